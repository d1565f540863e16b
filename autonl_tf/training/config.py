"""`TrainConfig`, every setting of a training run and its default (the paper's
ImageNet recipe: MnasNet / AutoNL, arXiv 2004.01961 section 5), and the
values its string settings take.

Pure Python, so that `flags/train.py` derives the tools' flags from it
without importing TensorFlow.
"""

import dataclasses
from typing import TYPE_CHECKING, Optional

from autonl_tf import constants
from autonl_tf.arch import codec

if TYPE_CHECKING:
  from autonl_tf.data.config import DataConfig

#: `optimizer`: the weight optimizers of `training.optimizers.make`.
OPTIMIZERS = ("rmsprop", "sgd", "adam")
#: `lr_schedule`: the decays of `training.schedules.learning_rate_schedule`.
LR_SCHEDULES = ("exponential", "cosine")

#: The fields of `TrainConfig` that take one of a fixed set of values.
CHOICES = {"optimizer": OPTIMIZERS, "lr_schedule": LR_SCHEDULES}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Every setting of a training run; defaults are the paper's ImageNet recipe.

  Attributes:
    arch: preset name, arch file, or a `keras.applications` anchor
      (`keras:mobilenet_v2:<alpha>`, see `models.anchors`).
    data: what to read (`autonl_tf.data.DataConfig`).
    model_dir: output directory: checkpoints, logs, `final.keras` and
      `metrics.json`.
    batch_size: global batch size.
    epochs: training epochs.
    steps_per_epoch: steps per epoch (None: one pass over the train split).
    optimizer: the weight optimizer: `rmsprop` (TF1-style, the paper's),
      `sgd` (with momentum) or `adam`.
    nesterov: Nesterov momentum (`sgd`).
    lr_per_256: peak learning rate per 256 images (scaled by batch_size /
      256).
    lr_schedule: decay after the warm-up: `exponential` (lr_decay_rate every
      lr_decay_epochs) or `cosine` (to 0 at the last step).
    lr_warmup_epochs: epochs of linear learning-rate warm-up from 0.
    lr_decay_rate: factor of each exponential decay.
    lr_decay_epochs: epochs between exponential decays.
    rmsprop_rho: RMSProp's decay of the mean square.
    momentum: momentum of RMSProp or SGD.
    epsilon: RMSProp's epsilon.
    label_smoothing: label smoothing of the cross-entropy.
    weight_decay: L2 weight decay on conv / dense kernels (not BN, not
      biases).
    dropout_rate: dropout before the classifier.
    drop_connect_rate: drop-connect (stochastic depth) rate of the last
      block, linear in depth.
    ema_momentum: weight EMA momentum (0: off); the EMA weights are
      evaluated and saved.
    bn_momentum: batch-norm momentum.
    eval_split: split of the final evaluation.
    validation_split: split evaluated after each epoch (None, `none` on the
      command line: none).
    validation_steps: batches of the per-epoch validation (None: all).
    eval_steps: batches of the final evaluation (None: all).
    bn_recalibration_batches: training batches over which BN statistics are
      re-estimated for the final (EMA) weights before the final evaluation
      (0: off; see `evaluation.recalibrate_batch_norm` for why).
    jit_compile: XLA-compile the train step.
    precision: `float32`, `mixed_bfloat16` (TPU, CPU) or `mixed_float16`
      (GPU, with dynamic loss scaling).
    sync_bn: batch-norm statistics over all replicas (the global batch).
    checkpoints_to_keep: per-epoch checkpoints kept.
    verbose: Keras progress output: 0 silent, 1 bar, 2 line per epoch.
    arch_limits: bounds on the arch (`arch.ArchLimits`; None: the
      defaults), checked before any data is read or graph built.
  """
  arch: str
  data: "DataConfig"
  model_dir: str
  batch_size: int = 256
  epochs: int = 350
  steps_per_epoch: Optional[int] = None
  optimizer: str = "rmsprop"
  nesterov: bool = False
  lr_per_256: float = 0.016
  lr_schedule: str = "exponential"
  lr_warmup_epochs: float = 5.0
  lr_decay_rate: float = 0.97
  lr_decay_epochs: float = 2.4
  rmsprop_rho: float = 0.9
  momentum: float = 0.9
  epsilon: float = 1e-3
  label_smoothing: float = 0.1
  weight_decay: float = 1e-5
  dropout_rate: float = 0.2
  drop_connect_rate: float = 0.2
  ema_momentum: float = 0.9999
  bn_momentum: float = constants.BN_MOMENTUM
  eval_split: str = "test"
  validation_split: Optional[str] = "validation"
  validation_steps: Optional[int] = None
  eval_steps: Optional[int] = None
  bn_recalibration_batches: int = 100
  jit_compile: bool = False
  precision: str = "float32"
  sync_bn: bool = False
  checkpoints_to_keep: int = 3
  verbose: int = 2
  arch_limits: Optional[codec.ArchLimits] = None
