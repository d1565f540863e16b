"""Training: the trainer, evaluation, schedules, losses and callbacks (the named
recipes, which set search settings too, are `autonl_tf.recipes`).

The names below are imported on first use (PEP 562), so that importing one
module of the package (`autonl_tf.training.losses`, as Keras' registration
does) does not import the trainer and its data pipeline.
"""

from autonl_tf import lazy as _lazy

__all__, __getattr__, __dir__ = _lazy.exports(__name__, {
    "evaluation": ("evaluate", "examples_seen", "recalibrate_batch_norm", "topk_correct"),
    "losses": ("SparseLabelSmoothingCrossEntropy", "apply_weight_decay", "decayed_variables"),
    "schedules": ("WarmupExponentialDecay", "learning_rate_schedule"),
    "config": ("TrainConfig",),
    "trainer": ("build_and_compile", "train"),
})
