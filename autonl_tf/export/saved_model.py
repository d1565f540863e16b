"""SavedModel export for TF Serving (`<export_dir>/<version>/`).

Two signatures, both returning `logits`, `probabilities`, `top_k_classes`,
`top_k_scores` (and `top_k_labels` when class names are known):

* `serving_default`: `images`, float32 `[batch, H, W, 3]` with values 0-255;
* `predict_images`: `image_bytes`, a `[batch]` tf.string of encoded JPEG/PNG/
  GIF/BMP files, preprocessed in the graph the way the paper evaluates. The
  input name ends in `_bytes`, so TF Serving's REST API accepts
  `{"instances": [{"b64": "..."}]}`.

Class names are stored as the asset `assets/labels.txt`, one per line, and
looked up in the graph.

Requests are checked in the graph before any layer runs (`check_images`): a
wrong rank, size or channel count, or pixels that are not finite values in
[0, 255], fail that request with an `InvalidArgumentError` naming what was
expected; an empty batch returns empty outputs. `images` is declared with an
unknown shape so that the rank check itself runs (a declared shape would let
the graph optimiser fold it away, and a rank-3 tensor would reach the convs).
"""

import os
import re
import shutil
import tempfile
from typing import Optional, Sequence

import keras
import tensorflow as tf

from autonl_tf import io
from autonl_tf import run_files
from autonl_tf.data import decoded_size, preprocess

LABELS_FILE = run_files.LABELS
OUTPUTS = ("logits", "probabilities", "top_k_classes", "top_k_scores")
PIXEL_RANGE = (0.0, 255.0)


def shape_message(size: int) -> str:
  """What a request must look like (the in-graph and the TFLite checks)."""
  return f"images must be float32 pixels of shape [batch, {size}, {size}, 3]"


VALUES_MESSAGE = "images must hold finite pixel values in [0, 255]"


class ExportError(ValueError):
  pass


#: What every tool asks of a model (the contract of this library's networks).
CLASSIFIER = "an image classifier: one [batch, H, H, 3] image input, one [batch, classes] output"


def _shape(model, which):
  try:
    return getattr(model, which)
  except (AttributeError, ValueError):  # a model never called or built
    raise ExportError(f"the model has no defined {which.split('_')[0]}: it is not "
                      f"{CLASSIFIER}") from None


def _dims(shape, rank):
  return (isinstance(shape, tuple) and len(shape) == rank
          and all(d is None or isinstance(d, int) for d in shape))


def input_size_of(model: keras.Model) -> int:
  """H of `model`'s one `[batch, H, H, 3]` input; `ExportError` naming the
  input otherwise (several inputs, another rank, a non-square or non-RGB one)."""
  shape = _shape(model, "input_shape")
  if not _dims(shape, 4) or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
    raise ExportError(f"the model's input shape {shape} is not one fixed [batch, H, H, 3] "
                      f"image: it is not {CLASSIFIER}")
  return int(shape[1])


def num_classes_of(model: keras.Model) -> int:
  """The classes of `model`'s one `[batch, classes]` output (`ExportError` otherwise)."""
  shape = _shape(model, "output_shape")
  if not _dims(shape, 2) or shape[1] is None or shape[1] < 2:
    raise ExportError(f"the model's output shape {shape} is not one [batch, classes] vector "
                      f"of at least 2 logits: it is not {CLASSIFIER}")
  return int(shape[1])


def check_classifier(model: keras.Model):
  """`(input size, classes)` of a model every tool can take, else `ExportError`."""
  return input_size_of(model), num_classes_of(model)


def write_labels(path: str, class_names: Sequence[str]):
  bad = [n for n in class_names if "\n" in n or "\r" in n]
  if bad:
    raise ExportError(f"class name {bad[0]!r} contains a line break")
  io.write_text(path, "".join(f"{n}\n" for n in class_names))


def read_labels(path: str):
  """The class names of a labels file, one per line (`ExportError` naming
  the file when it is not UTF-8 text)."""
  try:
    with open(path, encoding="utf-8") as f:
      return [line.rstrip("\n") for line in f]
  except UnicodeDecodeError as e:
    raise ExportError(f"labels file {path} is not UTF-8 text (byte {e.start}): expected one "
                      "class name per line") from None


def check_class_names(model, class_names):
  if class_names is not None and len(class_names) != num_classes_of(model):
    raise ExportError(f"{len(class_names)} class names for a model with "
                      f"{num_classes_of(model)} outputs")


def check_images(images, size):
  """`images` with its static shape `[None, size, size, 3]`, after in-graph
  checks that it is a float `[batch, size, size, 3]` tensor of finite values
  in [0, 255] (each failing with an `InvalidArgumentError` that says what was
  expected and what came). The rank is checked before anything indexes the
  shape, and nothing downstream runs before the checks."""
  shape = tf.shape(images)
  rank_ok = tf.equal(tf.size(shape), 4)
  # Pad the shape so that comparing dims 1-3 is valid whatever the rank.
  dims = tf.concat([shape, [-1, -1, -1, -1]], 0)[1:4]
  shape_ok = tf.logical_and(rank_ok, tf.reduce_all(tf.equal(dims, [size, size, 3])))
  check_shape = tf.debugging.Assert(
      shape_ok, [f"{shape_message(size)}, got shape", shape], summarize=8,
      name="check_images_shape")
  with tf.control_dependencies([check_shape]):
    images = tf.identity(images)
    valid = tf.logical_and(images >= PIXEL_RANGE[0], images <= PIXEL_RANGE[1])  # NaN: False
    bad = tf.boolean_mask(tf.reshape(images, [-1]), tf.logical_not(tf.reshape(valid, [-1])))
    check_values = tf.debugging.Assert(
        tf.reduce_all(valid),
        [f"{VALUES_MESSAGE}; values outside:", tf.size(bad), "e.g.", bad[:3]],
        name="check_images_values")
  with tf.control_dependencies([check_values]):
    return tf.ensure_shape(tf.identity(images), [None, size, size, 3])


class _Heads:
  """Logits -> the signature outputs; the label table when names exist."""

  def __init__(self, model, top_k, labels_path=None):
    self.model = model
    self.top_k = min(top_k, num_classes_of(model))
    self.table = None
    if labels_path is not None:
      init = tf.lookup.TextFileInitializer(
          labels_path, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
          tf.string, tf.lookup.TextFileIndex.WHOLE_LINE)
      self.table = tf.lookup.StaticHashTable(init, default_value="")

  def __call__(self, images):
    """The outputs for checked `[batch, H, W, 3]` images; for an empty batch,
    empty outputs without running the network."""
    classes = num_classes_of(self.model)
    logits = tf.cond(
        tf.shape(images)[0] > 0,
        lambda: tf.cast(self.model(preprocess.normalize(images), training=False), tf.float32),
        lambda: tf.zeros([0, classes], tf.float32))
    logits = tf.ensure_shape(logits, [None, classes])
    probabilities = tf.nn.softmax(logits, axis=-1)
    scores, classes = tf.math.top_k(probabilities, k=self.top_k)
    out = {"logits": logits, "probabilities": probabilities,
           "top_k_classes": classes, "top_k_scores": scores}
    if self.table is not None:
      out["top_k_labels"] = self.table.lookup(tf.cast(classes, tf.int64))
    return out


#: What an export writes before it is whole: `.<version>.tmp-<pid>-*`
#: directories and `*.tflite.tmp-<pid>` files (no pid: older versions).
_TEMPORARY = re.compile(r"^\.\d+\.tmp-(?:(\d+)-)?|\.tflite\.tmp(?:-(\d+))?$")


def remove_stale_temporaries(export_dir: str):
  """Removes what killed exports left in `export_dir` (`_TEMPORARY`, of
  processes that are gone: `io.remove_stale_temporaries`). Returns their names."""
  return io.remove_stale_temporaries(export_dir, _TEMPORARY)


def export_saved_model(model: keras.Model, export_dir: str, version: int = 1,
                       class_names: Optional[Sequence[str]] = None, top_k: int = 5,
                       overwrite: bool = False,
                       max_image_pixels: int = decoded_size.DEFAULT_MAX_PIXELS) -> str:
  """Writes `model` (taking ImageNet-normalised input) as a SavedModel into
  `export_dir/version`, atomically: it is built in a temporary directory
  beside the target and renamed into place only when complete. Temporary
  directories that killed exports left behind are removed first.
  `predict_images` refuses, before decoding, an image whose header declares
  more than `max_image_pixels` pixels (`decoded_size.check_decoded_size`).

  Returns the version directory.
  """
  if version < 0:
    raise ExportError(f"version must be a non-negative integer, got {version}")
  if max_image_pixels < 1:
    raise ExportError(f"max_image_pixels must be a positive number of pixels, got "
                      f"{max_image_pixels}")
  size, _ = check_classifier(model)
  check_class_names(model, class_names)
  target = os.path.join(export_dir, str(version))
  if os.path.exists(target):
    if not overwrite:
      raise ExportError(f"{target} already exists: pick another --version or pass --overwrite")
  os.makedirs(export_dir, exist_ok=True)
  remove_stale_temporaries(export_dir)
  work = tempfile.mkdtemp(prefix=f".{version}.tmp-{os.getpid()}-", dir=export_dir)
  try:
    labels_path = None
    if class_names is not None:
      staging = os.path.join(work, "staging")
      os.makedirs(staging)
      labels_path = os.path.join(staging, LABELS_FILE)
      write_labels(labels_path, class_names)
    heads = _Heads(model, top_k, labels_path)
    archive = keras.export.ExportArchive()
    archive.track(model)
    if heads.table is not None:
      archive.track(heads.table)
    archive.add_endpoint(
        "serving_default", lambda images: heads(check_images(images, size)),
        input_signature=[tf.TensorSpec(None, tf.float32, name="images")])

    def from_bytes(image_bytes):
      check = tf.debugging.Assert(
          tf.equal(tf.rank(image_bytes), 1),
          ["image_bytes must be a [batch] vector of encoded images, got shape",
           tf.shape(image_bytes)], name="check_image_bytes_shape")
      with tf.control_dependencies([check]):
        image_bytes = tf.ensure_shape(tf.identity(image_bytes), [None])
      images = tf.map_fn(lambda b: preprocess.eval_image_any_size_from_bytes(
                             b, size, max_image_pixels),
                         image_bytes, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
      return heads(images)

    archive.add_endpoint(
        "predict_images", from_bytes,
        input_signature=[tf.TensorSpec(None, tf.string, name="image_bytes")])
    out = os.path.join(work, "model")
    archive.write_out(out, verbose=False)
    # overwrite: swap only once the new one is complete; the old version is
    # moved aside (and put back if the swap fails), never deleted first.
    old = os.path.join(work, "old")
    if os.path.exists(target):
      os.rename(target, old)
    try:
      os.rename(out, target)
    except OSError:
      if os.path.exists(old):
        os.rename(old, target)
      raise
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return target


def saved_model_labels(path: str):
  """Class names stored in an exported SavedModel, or None."""
  labels = os.path.join(path, "assets", LABELS_FILE)
  return read_labels(labels) if os.path.exists(labels) else None
