"""Mixed depthwise convolution (MixNet's MDConv: Tan and Le, "MixConv: Mixed
Depthwise Convolutional Kernels", BMVC 2019), the `k3.5.7` kernels of an
arch string."""

import keras

from autonl_tf import constants
from autonl_tf import flops
from autonl_tf.layers.common import convs_per_group
from autonl_tf.layers.depthwise import DepthwiseConv2D
from autonl_tf.saving import KERAS_PACKAGE

@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class MixedDepthwiseConv2D(keras.layers.Layer):
  """Depthwise conv whose channels are split into groups with their own
  kernel sizes (MixNet's MDConv); one kernel size is a plain depthwise conv.

  The split gives each group `C // G` channels and the remainder to the first
  group, as MixNet and the official AutoNL code do.

  Args:
    kernel_sizes: list of odd kernel sizes, one per channel group.
    strides: int or (sh, sw).
    **kwargs: base layer arguments.

  Call arguments:
    inputs: `[N, H, W, C]` tensor.
  """

  def __init__(self, kernel_sizes=(3,), strides=1, **kwargs):
    super().__init__(**kwargs)
    self.kernel_sizes = [int(k) for k in kernel_sizes]
    self.strides = tuple(strides) if isinstance(strides, (list, tuple)) else (int(strides),) * 2

  def build(self, input_shape):
    channels = flops.split_channels(int(input_shape[-1]), len(self.kernel_sizes))
    self.convs = []
    for i, (k, c) in enumerate(zip(self.kernel_sizes, channels)):
      conv = DepthwiseConv2D(
          k, strides=self.strides, padding="same", use_bias=False,
          depthwise_initializer=constants.conv_initializer(), name=f"dw_{i}_k{k}")
      conv.build(tuple(input_shape[:-1]) + (c,))
      self.convs.append(conv)

  def call(self, inputs):
    return convs_per_group(self.convs, inputs)

  def compute_output_shape(self, input_shape):
    n, h, w, c = input_shape
    out = lambda size, s: None if size is None else flops.same_out_size(size, s)
    return (n, out(h, self.strides[0]), out(w, self.strides[1]), c)

  def get_config(self):
    config = super().get_config()
    config.update(kernel_sizes=list(self.kernel_sizes), strides=list(self.strides))
    return config
