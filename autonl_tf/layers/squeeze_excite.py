"""Squeeze-and-excitation (Hu et al., CVPR 2018) as MnasNet places it in an
MBConv block."""

import keras
import tensorflow as tf

from autonl_tf import constants
from autonl_tf.saving import KERAS_PACKAGE

@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class SqueezeExcite(keras.layers.Layer):
  """Squeeze-excitation: `x * sigmoid(W2 swish(W1 GAP(x) + b1) + b2)`.

  Args:
    reduced_filters: width of the bottleneck (MnasNet: `max(1, int(in * se))`
      of the *block* input channels).
    **kwargs: base layer arguments.

  Call arguments:
    inputs: `[N, H, W, C]` tensor.
  """

  def __init__(self, reduced_filters, **kwargs):
    super().__init__(**kwargs)
    self.reduced_filters = int(reduced_filters)

  def build(self, input_shape):
    c = int(input_shape[-1])
    self.se_reduce = keras.layers.Conv2D(
        self.reduced_filters, 1, kernel_initializer=constants.conv_initializer(),
        name="se_reduce")
    self.se_expand = keras.layers.Conv2D(
        c, 1, kernel_initializer=constants.conv_initializer(), name="se_expand")
    self.se_reduce.build((None, 1, 1, c))
    self.se_expand.build((None, 1, 1, self.reduced_filters))

  def call(self, inputs):
    s = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
    s = self.se_expand(tf.nn.silu(self.se_reduce(s)))
    return inputs * tf.sigmoid(s)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(reduced_filters=self.reduced_filters)
    return config
