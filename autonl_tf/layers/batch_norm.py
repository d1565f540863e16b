"""Batch normalization that trains with TensorFlow's fused kernel.

Why: Keras 3's `BatchNormalization` computes a training call from separate
ops (`tf.nn.moments`, then `tf.nn.batch_normalization`), about ten
element-wise kernels forward and more backward, where tf.keras used one
`FusedBatchNormV3` (keras-team/keras-core#225, "BatchNorm is slow": Keras
Core's BN is much slower than tf.keras' without XLA). The fused kernel makes a
CPU training step markedly faster (`benchmarks/train_step.py` measures it).

`BatchNormalization` is Keras' layer (same variables, config and inference
path) whose non-synchronized training call on NHWC tensors runs
`tf.compat.v1.nn.fused_batch_norm` instead: the same normalisation,
`(x - mean) / sqrt(var + epsilon) * gamma + beta` with the biased batch
variance, and the same moving-statistics update as Keras, which averages the
biased variance (the fused op returns the unbiased one for the moving
average, so it is scaled back by (n - 1) / n). Everything else (inference,
`synchronized=True`, masks, renorm, other ranks, axes or dtypes, other
backends) is Keras' own code.
"""

import keras
import tensorflow as tf

from autonl_tf import constants
from autonl_tf.saving import KERAS_PACKAGE

#: False: every call is Keras' own (read when a call is traced), to measure or
#: rule out the fused kernel (benchmarks/train_step.py).
USE_FUSED = True


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class BatchNormalization(keras.layers.BatchNormalization):
  """`keras.layers.BatchNormalization`, trained with the fused kernel (see the
  module docstring)."""

  def _fused(self, inputs, training, mask) -> bool:
    return (USE_FUSED and isinstance(training, bool) and training and self.trainable
            and mask is None and not self.synchronized and not self.renorm
            and keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
            and self.axis in (-1, 3) and inputs.dtype in (tf.float32, tf.bfloat16, tf.float16))

  def call(self, inputs, training=None, mask=None):
    if not self._fused(inputs, training, mask):
      return super().call(inputs, training=training, mask=mask)
    x = tf.cast(inputs, "float32")  # as Keras: statistics in float32
    channels = x.shape[-1]
    gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
    beta = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels])
    y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
        x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
    n = tf.cast(tf.size(x, out_type=tf.int64) // channels, "float32")
    variance = tf.math.multiply_no_nan(unbiased, (n - 1.0) / n)  # 0 for n = 1, whatever the op
    m = self.momentum
    self.moving_mean.assign(tf.cast(self.moving_mean, "float32") * m + mean * (1.0 - m))
    self.moving_variance.assign(tf.cast(self.moving_variance, "float32") * m
                                + variance * (1.0 - m))
    return tf.cast(y, self.compute_dtype)


def paper_batch_norm(name, gamma_initializer="ones", momentum=constants.BN_MOMENTUM,
                     epsilon=constants.BN_EPSILON, synchronized=False):
  """`BatchNormalization` with the paper's settings (`constants.BN_MOMENTUM`,
  `constants.BN_EPSILON`); `synchronized` computes batch statistics over all
  replicas of a tf.distribute strategy."""
  return BatchNormalization(
      momentum=momentum, epsilon=epsilon, gamma_initializer=gamma_initializer,
      synchronized=synchronized, name=name)
