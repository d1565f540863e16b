"""Loading trained networks for evaluation and export: a `.keras` file, a
per-epoch checkpoint (`.weights.h5`, EMA weights used when it holds them), a
SavedModel directory or a `.tflite` file.

Used by the export (`workflow`), `tools/eval.py` and the pipeline's evaluate
stage; it depends on training (the optimizer whose EMA a checkpoint holds),
training never on it.
"""

import os
import zipfile
from typing import Callable, Optional

import keras
import tensorflow as tf

from autonl_tf import constants
from autonl_tf.export.saved_model import ExportError, check_classifier
from autonl_tf.export.tflite import TFLiteModel
from autonl_tf.models.network import build_model
from autonl_tf.training.optimizers import RMSpropTF


class ModelLoadError(ValueError):
  pass


def _checkpoint_optimizer_vars(path):
  import h5py
  try:
    with h5py.File(path, "r") as f:
      group = f.get("optimizer/vars")
      return 0 if group is None else len(group.keys())
  except OSError as e:  # h5py's messages do not name the file
    raise ModelLoadError(f"cannot read checkpoint {path} (truncated or corrupt?): "
                         f"{str(e).strip()}") from None


def load_checkpoint(path, arch, input_size, num_classes, use_ema=True, arch_limits=None):
  """Builds `arch` and loads a `.weights.h5` checkpoint written by training.

  When the checkpoint carries the optimizer's weight EMA (RMSProp with
  momentum and `use_ema`: iterations [+ learning rate] + 3 slots per
  trainable variable), the EMA values replace the raw weights.
  """
  model = build_model(arch, (input_size, input_size, 3), num_classes, arch_limits=arch_limits)
  n = len(model.trainable_variables)
  stored = _checkpoint_optimizer_vars(path)
  # Training uses a schedule (no learning-rate variable); a constant rate adds one.
  lr = 0.01 if stored == 3 * n + 2 else keras.optimizers.schedules.ExponentialDecay(0.01, 1, 1.0)
  optimizer = RMSpropTF(learning_rate=lr, momentum=0.9, use_ema=True)
  optimizer.build(model.trainable_variables)
  has_ema = use_ema and stored == len(optimizer.variables)
  if has_ema:
    model.optimizer = optimizer
  try:
    model.load_weights(path, skip_mismatch=False) if has_ema else _load_model_weights_only(model, path)
  except Exception as e:
    raise ModelLoadError(f"checkpoint {path} does not fit arch with input {input_size} and "
                         f"{num_classes} classes: {e}") from None
  if has_ema:
    optimizer.finalize_variable_values(model.trainable_variables)
  model.optimizer = None
  return model, has_ema


def _load_model_weights_only(model, path):
  import warnings
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the stored optimizer state has no home here
    model.load_weights(path)


def load_saved_model(path: str):
  """`tf.saved_model.load(path)`, or a `ModelLoadError` naming `path` when it
  is no SavedModel or one that cannot be read (truncated, corrupt, a
  symlink loop)."""
  if not tf.saved_model.contains_saved_model(path):
    raise ModelLoadError(f"{path} is a directory but not a SavedModel")
  try:
    return tf.saved_model.load(path)
  except (tf.errors.OpError, ValueError, OSError) as e:
    msg = getattr(e, "message", str(e)).strip().splitlines()
    raise ModelLoadError(f"cannot load SavedModel {path} (truncated or corrupt?): "
                         f"{msg[0] if msg else type(e).__name__}") from None


def load_keras_model(path: str, arch: Optional[str] = None, input_size: int = constants.INPUT_SIZE,
                     num_classes: int = constants.NUM_CLASSES, arch_limits=None):
  """A `.keras` file or a `.weights.h5` checkpoint (EMA weights when it holds
  them) -> (Keras model taking normalised images, description)."""
  if not os.path.exists(path):
    raise ModelLoadError(f"model {path} does not exist")
  if path.endswith(".keras"):
    if not zipfile.is_zipfile(path):  # Keras would say "File not found"
      raise ModelLoadError(f"cannot load {path}: not a complete .keras file (it is a zip "
                           "archive; this one is truncated or corrupt)")
    try:
      model = keras.saving.load_model(path, compile=False)
    except Exception as e:
      raise ModelLoadError(f"cannot load {path}: {e}") from None
    try:
      check_classifier(model)
    except ExportError as e:
      raise ModelLoadError(f"{path}: {e}") from None
    return model, f"Keras model {path}"
  if path.endswith(".weights.h5"):
    if arch is None:
      raise ModelLoadError(f"checkpoint {path} holds weights only: pass its --arch")
    model, has_ema = load_checkpoint(path, arch, input_size, num_classes,
                                     arch_limits=arch_limits)
    return model, f"checkpoint {path} ({'EMA' if has_ema else 'raw'} weights)"
  raise ModelLoadError(f"don't know how to load {path} as a Keras model: expected a .keras "
                       "file or a .weights.h5 checkpoint")


def load_for_inference(path: str, arch: Optional[str] = None,
                       input_size: int = constants.INPUT_SIZE,
                       num_classes: int = constants.NUM_CLASSES, arch_limits=None):
  """Returns (predict_fn(images) -> logits ndarray, takes_raw_pixels, description).

  `.keras` files and checkpoints take normalised images; SavedModels and
  `.tflite` files exported by `tools/export.py` take 0-255 pixels (they
  normalise inside).
  """
  if not os.path.exists(path):
    raise ModelLoadError(f"model {path} does not exist")
  if os.path.isdir(path):
    loaded = load_saved_model(path)
    if "serving_default" not in loaded.signatures:
      raise ModelLoadError(f"SavedModel {path} has no serving_default signature")
    serve = loaded.signatures["serving_default"]
    inputs = sorted(serve.structured_input_signature[1])
    outputs = sorted(serve.structured_outputs)
    if inputs != ["images"] or "logits" not in outputs:
      raise ModelLoadError(f"SavedModel {path} was not written by tools/export.py: its "
                           f"serving_default takes {inputs} and returns {outputs} (expected "
                           "images -> logits, ...)")
    fn = lambda images: serve(images=tf.convert_to_tensor(images))["logits"].numpy()
    return fn, True, f"SavedModel {path}"
  if path.endswith(".tflite"):
    return TFLiteModel(path), True, f"TFLite model {path}"
  if not (path.endswith(".keras") or path.endswith(".weights.h5")):
    raise ModelLoadError(f"don't know how to load {path}: expected a .keras file, a .weights.h5 "
                         "checkpoint, a .tflite file or a SavedModel directory")
  model, what = load_keras_model(path, arch, input_size, num_classes, arch_limits)
  return _predict(model), False, what


def _predict(model) -> Callable:
  fn = tf.function(lambda x: model(x, training=False))
  out = lambda images: fn(images).numpy()
  out.model = model
  return out
