"""Keras registration of autonl_tf's classes, so that `.keras` files load.

Every layer, loss, learning-rate schedule and optimizer that the project
saves in a `.keras` file is registered with Keras under the package name
`KERAS_PACKAGE` (`"autonl_tf>MBConv"`, `"autonl_tf>RMSpropTF"`, ...).
Keras finds a saved class only once its module has run, and importing those
modules means importing TensorFlow, which `import autonl_tf` must not do
(the MAC counter and the pictures are pure Python). So:

* `import autonl_tf` registers them the first time Keras is imported, or at
  once when Keras already is (`register_on_keras_import`): after
  `import autonl_tf`, `keras.models.load_model("final.keras")` works in any
  order of imports, and a process that never imports Keras never pays for it;
* `autonl_tf.keras_objects()` registers them and returns them by registered
  name, e.g. for `keras.models.load_model(path, custom_objects=...)` or
  `keras.saving.custom_object_scope`.

Pure Python: this module imports Keras only inside `keras_objects()`.
"""

import importlib
import sys
import warnings

#: The `package` of every `keras.saving.register_keras_serializable` here.
KERAS_PACKAGE = "autonl_tf"

#: The modules whose classes a saved model may hold: the layers, and the
#: loss, schedules and optimizer that a compiled model saves with it.
MODULES = ("autonl_tf.layers", "autonl_tf.training.losses", "autonl_tf.training.schedules",
           "autonl_tf.training.optimizers")


def keras_objects() -> dict:
  """Registers autonl_tf's Keras classes (importing `MODULES`) and returns
  every registered one, `{"autonl_tf>MBConv": MBConv, ...}`."""
  for name in MODULES:
    importlib.import_module(name)
  import keras
  prefix = f"{KERAS_PACKAGE}>"
  return {k: v for k, v in keras.saving.get_custom_objects().items() if k.startswith(prefix)}


def _register_quietly():
  # Runs at the end of `import keras`: an error here must not fail the
  # user's import of Keras, only say why loading a .keras file may.
  try:
    for name in MODULES:
      importlib.import_module(name)
  except Exception as e:  # noqa: BLE001
    warnings.warn(f"autonl_tf could not register its Keras classes ({type(e).__name__}: {e}); "
                  "call autonl_tf.keras_objects() before loading a .keras file", stacklevel=2)


class _AfterKerasImport:
  """A `sys.meta_path` finder (duck-typed: `importlib.abc` alone would double
  the import time of `autonl_tf`) that finds `keras` through the other
  finders and makes its module run `_register_quietly` once it has executed;
  then it leaves `sys.meta_path`."""

  def find_spec(self, fullname, path=None, target=None):
    if fullname != "keras":
      return None
    spec = None
    for finder in sys.meta_path:
      find = getattr(finder, "find_spec", None)
      if finder is not self and find is not None:
        spec = find(fullname, path, target)
        if spec is not None:
          break
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
      return None
    exec_module = spec.loader.exec_module

    def exec_then_register(module):
      exec_module(module)
      _register_quietly()

    try:
      spec.loader.exec_module = exec_then_register  # this spec's own loader object
    except (AttributeError, TypeError):  # cannot be wrapped: keras_objects() still works
      return None
    sys.meta_path.remove(self)  # the import stops at this spec: safe to leave now
    return spec


def register_on_keras_import():
  """Registers autonl_tf's Keras classes now if Keras is imported, else as
  soon as it is (called by `import autonl_tf`; idempotent)."""
  if "keras" in sys.modules:
    _register_quietly()
  elif not any(type(f).__name__ == _AfterKerasImport.__name__ for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
