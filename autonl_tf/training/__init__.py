"""Training recipe, evaluation and callbacks.

The names below are imported on first use (PEP 562), so that importing one
module of the package (`autonl_tf.training.losses`, as Keras' registration
does) does not import the trainer and its data pipeline.
"""

import importlib

_EXPORTS = {
    "evaluation": ("evaluate", "examples_seen", "recalibrate_batch_norm", "topk_correct"),
    "losses": ("SparseLabelSmoothingCrossEntropy", "apply_weight_decay", "decayed_variables"),
    "schedules": ("WarmupExponentialDecay", "learning_rate_schedule"),
    "trainer": ("TrainConfig", "build_and_compile", "train"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
  if name in _MODULE_OF:
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(__all__))
