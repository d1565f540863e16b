"""autonl-tf: AutoNL (Li et al., CVPR 2020) in TensorFlow 2 / Keras 3.

`autonl_tf.arch` and `autonl_tf.flops` are pure Python; everything that needs
TensorFlow is imported lazily so that counting MACs stays fast.
"""

__version__ = "0.1.0"

_LAZY = {"build_model": "autonl_tf.models.network"}


def __getattr__(name):
  if name in _LAZY:
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'autonl_tf' has no attribute '{name}'")
