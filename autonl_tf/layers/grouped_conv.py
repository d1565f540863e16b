"""Grouped 1x1 (or kxk) convolution with one kernel size per group, the `a` /
`p` kernel lists of an arch string."""

import keras

from autonl_tf import constants
from autonl_tf import flops
from autonl_tf.layers.common import convs_per_group
from autonl_tf.saving import KERAS_PACKAGE

@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class GroupedConv2D(keras.layers.Layer):
  """Conv without bias whose input and output channels are split into groups,
  one kernel size per group (the `a` / `p` lists of an arch string).

  Args:
    filters: output channels.
    kernel_sizes: list of kernel sizes, one per group.
    **kwargs: base layer arguments.

  Call arguments:
    inputs: `[N, H, W, C]` tensor.
  """

  def __init__(self, filters, kernel_sizes=(1,), **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.kernel_sizes = [int(k) for k in kernel_sizes]

  def build(self, input_shape):
    groups = len(self.kernel_sizes)
    cins = flops.split_channels(int(input_shape[-1]), groups)
    couts = flops.split_channels(self.filters, groups)
    self.convs = []
    for i, (k, ci, co) in enumerate(zip(self.kernel_sizes, cins, couts)):
      conv = keras.layers.Conv2D(
          co, k, padding="same", use_bias=False,
          kernel_initializer=constants.conv_initializer(),
          name="conv" if groups == 1 else f"conv_{i}_k{k}")
      conv.build(tuple(input_shape[:-1]) + (ci,))
      self.convs.append(conv)

  def call(self, inputs):
    return convs_per_group(self.convs, inputs)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.filters,)

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, kernel_sizes=list(self.kernel_sizes))
    return config
