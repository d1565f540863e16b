"""Classifying image files with an exported model: a SavedModel (its
`predict_images` signature does the preprocessing) or a `.tflite` file
(preprocessed here with the same eval function)."""

import dataclasses
import os
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf

from autonl_tf.data import decoded_size, preprocess
from autonl_tf.export.loading import load_saved_model
from autonl_tf.export.saved_model import LABELS_FILE, ExportError, read_labels, saved_model_labels


@dataclasses.dataclass
class Prediction:
  path: str
  classes: List[int] = dataclasses.field(default_factory=list)
  scores: List[float] = dataclasses.field(default_factory=list)
  labels: Optional[List[str]] = None
  error: Optional[str] = None

  def as_dict(self):
    d = {"image": self.path}
    if self.error is not None:
      d["error"] = self.error
      return d
    d["top_k"] = [{"class": c, "score": s, **({"label": self.labels[i]} if self.labels else {})}
                  for i, (c, s) in enumerate(zip(self.classes, self.scores))]
    return d

  def format(self):
    if self.error is not None:
      return f"{self.path}: error: {self.error}"
    names = self.labels or [str(c) for c in self.classes]
    return f"{self.path}: " + ", ".join(f"{n} {s:.3f}" for n, s in zip(names, self.scores))


class Classifier:
  """`Classifier(path)(files)` -> one `Prediction` per file; a file that is
  not an image gets a Prediction with `error` and does not stop the others."""

  def __init__(self, path: str, top_k: int = 5, labels: Optional[str] = None,
               max_image_pixels: int = decoded_size.DEFAULT_MAX_PIXELS):
    """`max_image_pixels`: the decoded-size limit of a `.tflite` model's
    host-side decoding (a SavedModel's `predict_images` has its own, set at
    export)."""
    if not os.path.exists(path):
      raise ExportError(f"model {path} does not exist")
    if max_image_pixels < 1:
      raise ExportError(f"max_image_pixels must be a positive number of pixels, got "
                        f"{max_image_pixels}")
    self.top_k = top_k
    self.max_image_pixels = max_image_pixels
    self.class_names = read_labels(labels) if labels else None
    if path.endswith(".tflite"):
      from autonl_tf.export.tflite import TFLiteModel
      self.tflite = TFLiteModel(path)
      beside = os.path.join(os.path.dirname(path), LABELS_FILE)
      if self.class_names is None and os.path.exists(beside):
        self.class_names = read_labels(beside)
      self.kind = "TFLite"
    elif os.path.isdir(path) and tf.saved_model.contains_saved_model(path):
      loaded = load_saved_model(path)
      if "predict_images" not in loaded.signatures:
        raise ExportError(f"SavedModel {path} has no predict_images signature "
                          "(was it written by tools/export.py?)")
      self.signature = loaded.signatures["predict_images"]
      self._loaded = loaded
      if self.class_names is None:
        self.class_names = saved_model_labels(path)
      self.kind = "SavedModel"
      self.tflite = None
    else:
      raise ExportError(f"{path} is neither a .tflite file nor a SavedModel directory")

  def _probabilities(self, data: bytes) -> np.ndarray:
    if self.tflite is not None:
      image = preprocess.eval_image_any_size_from_bytes(
          tf.constant(data), self.tflite.input_size, self.max_image_pixels, "--max_image_pixels")
      logits = self.tflite(image.numpy()[None])[0]
      e = np.exp(logits - logits.max())
      return e / e.sum()
    out = self.signature(image_bytes=tf.constant([data]))
    return out["probabilities"].numpy()[0]

  def __call__(self, files: Sequence[str]) -> List[Prediction]:
    results = []
    for path in files:
      try:
        if os.path.exists(path) and not os.path.isfile(path):  # a FIFO or /dev/zero never ends
          results.append(Prediction(path, error="not a regular file"))
          continue
        with open(path, "rb") as f:
          data = f.read()
        p = self._probabilities(data)
      except OSError as e:
        results.append(Prediction(path, error=f"cannot read: {e.strerror}"))
        continue
      except tf.errors.InvalidArgumentError as e:
        results.append(Prediction(path, error=f"refused ({_first_line(e)})"))
        continue
      k = min(self.top_k, len(p))
      top = np.argsort(-p, kind="stable")[:k]
      labels = None
      if self.class_names is not None and len(self.class_names) == len(p):
        labels = [self.class_names[i] for i in top]
      results.append(Prediction(path, [int(i) for i in top], [float(p[i]) for i in top], labels))
    return results


def _first_line(e):
  """The human part of a TF op error: no node names, graph ids or op tags;
  of a failed in-graph check, its message alone."""
  import re
  msg = getattr(e, "message", str(e))
  check = re.search(r"Summarized data: b'(.*?)'$|assertion failed: \[(.*?)\]", msg, re.M)
  if check:
    return check.group(1) or check.group(2)
  msg = re.sub(r"\{\{[^}]*\}\}|\[\[.*?\]\]|\[Op:[^\]]*\]( name:)?", " ", msg)
  lines = [l.strip() for l in msg.splitlines()
           if l.strip() and "Detected at node" not in l and "stack traces" not in l
           and not l.startswith("Graph execution error")]
  return lines[-1] if lines else "invalid data"
