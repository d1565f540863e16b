"""Training recipe, evaluation and callbacks."""

from autonl_tf.training.evaluation import evaluate, recalibrate_batch_norm, topk_correct
from autonl_tf.training.losses import (SparseLabelSmoothingCrossEntropy, apply_weight_decay,
                                       decayed_variables)
from autonl_tf.training.schedules import WarmupExponentialDecay, learning_rate_schedule
from autonl_tf.training.trainer import TrainConfig, build_and_compile, train

__all__ = ["evaluate", "recalibrate_batch_norm", "topk_correct", "SparseLabelSmoothingCrossEntropy",
           "apply_weight_decay", "decayed_variables", "WarmupExponentialDecay",
           "learning_rate_schedule", "TrainConfig", "build_and_compile", "train"]
