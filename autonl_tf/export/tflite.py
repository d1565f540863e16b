"""TFLite export for phones: float32, float16, dynamic-range and full-integer
int8 models, builtin ops only, run with the LiteRT interpreter.

The converted graph takes one image, float32 `[1, H, W, 3]` with values 0-255
(uint8 for `int8`: pixels are exactly representable), normalises it inside
and returns `logits` `[1, classes]` (dequantised by `TFLiteModel`).
Conversion is restricted to `TFLITE_BUILTINS` (+ `TFLITE_BUILTINS_INT8`), so
a model that would need Select TF ops fails to convert instead of silently
shipping the TF kernels; `op_counts` lists the ops of the result.
"""

import collections
import os
import tempfile
from typing import Iterable, Optional

import keras
import numpy as np
import tensorflow as tf

from autonl_tf import io
from autonl_tf import run_files
from autonl_tf.data import preprocess
from autonl_tf.export.saved_model import (CLASSIFIER, PIXEL_RANGE, VALUES_MESSAGE, ExportError,
                                          input_size_of, shape_message)

VARIANTS = ("float32", "float16", "dynamic", "int8")


def _serving_saved_model(model, directory):
  size = input_size_of(model)
  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint(
      "serving_default",
      lambda images: {"logits": tf.cast(model(preprocess.normalize(images), training=False),
                                        tf.float32)},
      input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="images")])
  archive.write_out(directory, verbose=False)


def convert(model: keras.Model, variant: str = "float32",
            representative_images: Optional[Iterable[np.ndarray]] = None) -> bytes:
  """Converts `model` (ImageNet-normalised input) to a TFLite flatbuffer.

  `representative_images` (int8 only): 0-255 float images `[H, W, 3]` for
  calibrating the activation ranges.
  """
  if variant not in VARIANTS:
    raise ExportError(f"unknown TFLite variant {variant!r}: expected one of {', '.join(VARIANTS)}")
  if variant == "int8" and representative_images is None:
    raise ExportError("int8 needs representative images (pass --dataset)")
  with tempfile.TemporaryDirectory() as tmp:
    _serving_saved_model(model, tmp)
    converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
      converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
      images = list(representative_images)
      if not images:
        raise ExportError("int8 needs at least one representative image")
      converter.representative_dataset = lambda: ([im[None].astype(np.float32)] for im in images)
      converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
      converter.inference_input_type = tf.uint8
      converter.inference_output_type = tf.int8
    try:
      return converter.convert()
    except Exception as e:  # the converter's errors are ConverterError / RuntimeError
      raise ExportError(f"TFLite {variant} conversion failed: {str(e).strip()[:2000]}") from None


def _interpreter(model_content=None, model_path=None):
  from ai_edge_litert.interpreter import Interpreter
  return Interpreter(model_content=model_content, model_path=model_path, num_threads=None)


def op_counts(tflite_model: bytes) -> dict:
  """{op name: count} of a converted model (Select TF ops show as `Flex...`
  or as custom ops)."""
  interp = _interpreter(model_content=tflite_model)
  return dict(collections.Counter(d["op_name"] for d in interp._get_ops_details()))


def non_builtin_ops(ops: dict):
  return sorted(o for o in ops if o.startswith("Flex") or o.upper() == "CUSTOM"
                or o.startswith("Delegate"))


class TFLiteModel:
  """Runs a `.tflite` file made by `convert` on 0-255 images, one at a time,
  returning float logits."""

  def __init__(self, path=None, content=None):
    if path is not None and not os.path.exists(path):
      raise ExportError(f"TFLite model {path} does not exist")
    try:
      self.interp = _interpreter(model_content=content, model_path=path)
      self.interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:  # LiteRT's messages for a file that is no model
      raise ExportError(f"cannot load TFLite model {path or '(in memory)'}: "
                        f"{str(e).strip().splitlines()[0]}") from None
    inputs, outputs = self.interp.get_input_details(), self.interp.get_output_details()
    shapes = ([d["shape"].tolist() for d in inputs], [d["shape"].tolist() for d in outputs])
    shape = shapes[0][0] if len(inputs) == 1 else []
    out = shapes[1][0] if len(outputs) == 1 else []
    if (len(shape) != 4 or shape[0] != 1 or shape[1] != shape[2] or shape[3] != 3
        or len(out) != 2 or out[0] != 1 or out[1] < 2):
      raise ExportError(f"TFLite model {path or '(in memory)'} takes {shapes[0]} and returns "
                        f"{shapes[1]}: it is not {CLASSIFIER} (expected [1, H, H, 3] -> "
                        "[1, classes], as tools/export.py writes)")
    self.input, self.output = inputs[0], outputs[0]
    self.input_size = int(shape[1])
    self.num_classes = int(out[1])

  def _quantize(self, images):
    dtype = self.input["dtype"]
    if dtype == np.float32:
      return images.astype(np.float32)
    scale, zero = self.input["quantization"]
    info = np.iinfo(dtype)
    q = np.round(images / scale + zero)
    return np.clip(q, info.min, info.max).astype(dtype)

  def check(self, images) -> np.ndarray:
    """`images` as float32 after the serving signature's checks: shape
    `[batch, H, W, 3]`, finite values in [0, 255] (else `ExportError`)."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != (self.input_size, self.input_size, 3):
      raise ExportError(f"{shape_message(self.input_size)}, got shape {list(images.shape)}")
    bad = ~((images >= PIXEL_RANGE[0]) & (images <= PIXEL_RANGE[1]))
    if bad.any():
      raise ExportError(f"{VALUES_MESSAGE}; {int(bad.sum())} values outside, "
                        f"e.g. {images[bad][:3].tolist()}")
    return images

  def __call__(self, images: np.ndarray) -> np.ndarray:
    images = self.check(images)
    if not len(images):
      return np.zeros((0, self.num_classes), np.float32)
    out = []
    for image in images:
      self.interp.set_tensor(self.input["index"], self._quantize(image[None]))
      self.interp.invoke()
      y = self.interp.get_tensor(self.output["index"])
      if self.output["dtype"] != np.float32:
        scale, zero = self.output["quantization"]
        y = (y.astype(np.float32) - zero) * scale
      out.append(y[0])
    return np.stack(out)


def keras_logits(model: keras.Model, images: np.ndarray) -> np.ndarray:
  """The Keras model's logits on 0-255 images."""
  return model.predict(preprocess.normalize(images).numpy(), batch_size=32, verbose=0)


def non_finite_images(logits: np.ndarray) -> int:
  """How many images (rows) have a NaN or infinite logit."""
  return int(np.sum(~np.all(np.isfinite(logits), axis=-1)))


def check_finite_outputs(model: keras.Model, variants, image_sets):
  """Refuses (one `ExportError`) a model whose logits are not finite on any
  of `image_sets`, `[(images, what they are)]`: the converters would
  calibrate on NaN (the int8 one crashed the process) and the parity
  reports would print nan."""
  bad = []
  for images, what in image_sets:
    n = non_finite_images(keras_logits(model, images))
    if n:
      bad.append(f"{n} of {len(images)} {what}")
  if bad:
    raise ExportError(f"the model's logits are NaN or infinite on {' and on '.join(bad)}: "
                      f"refusing to export TFLite {', '.join(variants)} (nothing was written)")


def parity(keras_model: keras.Model, tflite_model: TFLiteModel, images: np.ndarray,
           variant: str = "") -> dict:
  """Top-1 agreement and logit differences of the TFLite model against the
  Keras model on the same 0-255 images; `ExportError` when the TFLite
  model's logits are not finite on some of them."""
  ref = keras_logits(keras_model, images)
  got = tflite_model(images)
  n = non_finite_images(got)
  if n:
    raise ExportError(f"the TFLite {variant} model's logits are NaN or infinite on {n} of "
                      f"{len(images)} parity images (the Keras model's are finite): not written")
  diff = np.abs(ref - got)
  return {
      "images": int(len(images)),
      "top1_agreement": float(np.mean(ref.argmax(-1) == got.argmax(-1))),
      "max_abs_logit_diff": float(diff.max()),
      "mean_abs_logit_diff": float(diff.mean()),
      "logit_range": float(ref.max() - ref.min()),
  }


def export_tflite(model: keras.Model, path: str, variant: str,
                  parity_images: np.ndarray, parity_source: str,
                  representative_images=None, representative_source: str = "") -> dict:
  """Converts, writes `path` (atomically) and `<path minus .tflite>.parity.json`
  with the parity report and op list; returns the report. A model whose
  logits are not finite on the parity or representative images is refused
  before the converter runs."""
  if not path.endswith(".tflite"):
    raise ExportError(f"TFLite output {path} must end with .tflite")
  images = [(parity_images, f"parity images ({parity_source})")]
  if variant == "int8" and representative_images is not None:
    images.append((np.asarray(representative_images),
                   f"calibration images ({representative_source or 'representative'})"))
  check_finite_outputs(model, [variant], images)
  flat = convert(model, variant, representative_images)
  ops = op_counts(flat)
  report = {"variant": variant, "file": os.path.basename(path), "bytes": len(flat),
            "input_size": input_size_of(model), "parity_images_from": parity_source}
  if variant == "int8":
    report["representative_images"] = len(representative_images)
    report["representative_images_from"] = representative_source
  report.update(parity(model, TFLiteModel(content=flat), parity_images, variant))
  report["ops"] = dict(sorted(ops.items()))
  report["non_builtin_ops"] = non_builtin_ops(ops)
  report["builtin_only"] = not report["non_builtin_ops"]
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  io.write_bytes(path, flat)  # a killed export's temporary is removed by the next one
  io.write_json(run_files.parity_report(path), report, sort_keys=False)
  return report


def format_report(report: dict) -> str:
  ops = ", ".join(f"{k} x{v}" for k, v in report["ops"].items())
  lines = [
      f"{report['file']}: {report['bytes'] / 1e6:.2f} MB, {report['variant']}, "
      f"input {report['input_size']}x{report['input_size']}",
      f"  parity vs Keras on {report['images']} images ({report['parity_images_from']}): "
      f"top-1 agreement {100 * report['top1_agreement']:.1f}%, max |logit diff| "
      f"{report['max_abs_logit_diff']:.3g} (mean {report['mean_abs_logit_diff']:.3g}, "
      f"logit range {report['logit_range']:.3g})",
      f"  ops: {'builtin only' if report['builtin_only'] else 'NON-BUILTIN: ' + ', '.join(report['non_builtin_ops'])}"
      f" ({ops})",
  ]
  return "\n".join(lines)
