"""Depthwise convolution whose kernel gradient takes oneDNN's fast path on
CPUs for kernels wider than 3.

Why: TensorFlow's CPU kernels run on oneDNN, whose dedicated depthwise
backward-weights kernel (`jit_dw`) only accepts kernels at most 3 wide
(`jcp.kw <= 3` in oneDNN's `jit_uni_dw_conv_bwd_weights_kernel::init_conf`,
src/cpu/x64/jit_uni_dw_conv_kernel_utils.cpp). A 5x5 or 7x7 depthwise kernel's
gradient falls back to oneDNN's generic grouped convolution (`jit:avx512_core`
in `ONEDNN_VERBOSE=1`): on this project's 2-core machine the kernel gradient
of one 128x32x32x48 layer takes 45 ms at 7x7 and 27 ms at 5x5 where the 3x3
one takes 4.4 ms.

The fix, in one place: the kernel gradient is computed strip by strip, each
strip at most 3 columns wide (7 = 3 + 2 + 2), by the same TensorFlow op on
explicitly padded, sliced input, so every piece takes the `jit_dw` path:
19 ms at 7x7, 14 ms at 5x5. It is the same sum, so the gradient equals
TensorFlow's to float rounding
(tests/test_depthwise.py checks it against TensorFlow's and a NumPy one).
The forward pass and the input gradient are TensorFlow's own.

`DepthwiseConv2D` is `keras.layers.DepthwiseConv2D` with this gradient in
training calls (inference calls, hence exports, are Keras' own graph);
`depthwise_conv2d` is the function, for layers that hold their own kernel
(the search's superkernel).
"""

import keras
import tensorflow as tf

from autonl_tf import flops
from autonl_tf.saving import KERAS_PACKAGE

#: Widest kernel oneDNN's depthwise backward-weights kernel accepts.
MAX_FAST_WIDTH = 3

#: None: the strips where they help, i.e. when TensorFlow sees no GPU or TPU
#: (cuDNN and XLA on accelerators have their own depthwise gradients); False:
#: never (TensorFlow's plain op), e.g. to measure or rule out the workaround
#: (benchmarks/train_step.py); True: always. Read when a call is traced.
USE_STRIPS = None


def _strips_wanted() -> bool:
  if USE_STRIPS is not None:
    return bool(USE_STRIPS)
  return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def strip_widths(kernel_width: int, stride: int):
  """Column strips of a kernel for the fast gradient: as few as possible, each
  at most `MAX_FAST_WIDTH` wide and as even as possible (7 -> [3, 2, 2]);
  None when the kernel is narrow enough already or a strip would be
  narrower than the stride (oneDNN then declines too)."""
  if kernel_width <= MAX_FAST_WIDTH:
    return None
  n = -(-kernel_width // MAX_FAST_WIDTH)
  widths = [kernel_width // n + (1 if i < kernel_width % n else 0) for i in range(n)]
  return widths if min(widths) >= stride else None


def _same_pads(size: int, kernel: int, stride: int):
  """TensorFlow's SAME padding (before, after) along one axis."""
  total = max((flops.same_out_size(size, stride) - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def depthwise_conv2d(x, kernel, strides=(1, 1), training=None):
  """`tf.nn.depthwise_conv2d(x, kernel, [1, sh, sw, 1], "SAME")` (NHWC,
  channel multiplier 1) whose kernel gradient, in training calls
  (`training` is True), is computed in strips of at most 3 columns (see the
  module docstring). Other calls are the plain op, so that inference graphs
  and exports are TensorFlow's own; so are calls whose kernel is 3 wide or
  less or whose spatial size is not static, and all when `USE_STRIPS` says so.

  Known cost: in a `tf.function`, every `tf.custom_gradient` call keeps its
  graph alive for the life of the process (tensorflow/tensorflow#27492,
  #97697), i.e. one training graph per trace: fine for the few traces of a
  training run, worth knowing in a process that retraces without end."""
  sh, sw = (int(strides),) * 2 if isinstance(strides, int) else (int(s) for s in strides)
  st = [1, sh, sw, 1]
  kh, kw, channels = (int(d) for d in kernel.shape[:3])
  widths = strip_widths(kw, sw)
  height, width = x.shape[1], x.shape[2]
  if (not (isinstance(training, bool) and training) or widths is None or height is None
      or width is None or int(kernel.shape[3]) != 1 or not _strips_wanted()):
    return tf.nn.depthwise_conv2d(x, kernel, st, "SAME")
  pads = [[0, 0], list(_same_pads(int(height), kh, sh)), list(_same_pads(int(width), kw, sw)),
          [0, 0]]
  wo = flops.same_out_size(int(width), sw)

  @tf.custom_gradient
  def conv(x, kernel):
    def grad(dy):
      dx = tf.nn.depthwise_conv2d_backprop_input(tf.shape(x), kernel, dy, st, "SAME")
      padded = tf.pad(x, pads)
      parts, start = [], 0
      for w in widths:
        strip = padded[:, :, start:start + sw * (wo - 1) + w, :]
        parts.append(tf.nn.depthwise_conv2d_backprop_filter(
            strip, [kh, w, channels, 1], dy, st, "VALID"))
        start += w
      return dx, tf.concat(parts, axis=1)
    return tf.nn.depthwise_conv2d(x, kernel, st, "SAME"), grad

  return conv(x, tf.cast(kernel, x.dtype))


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
  """`keras.layers.DepthwiseConv2D` whose training calls use
  `depthwise_conv2d` (same values, a kernel gradient oneDNN computes fast);
  other calls, and settings it does not cover (padding other than `same`,
  channels first, dilation, channel multiplier > 1), are Keras' own."""

  def _covered(self) -> bool:
    return (keras.backend.backend() == "tensorflow" and self.padding == "same"
            and self.data_format == "channels_last" and tuple(self.dilation_rate) == (1, 1)
            and self.depth_multiplier == 1)

  def call(self, inputs, training=None):
    if not (isinstance(training, bool) and training and self._covered()):
      return super().call(inputs)
    outputs = depthwise_conv2d(inputs, self.kernel, self.strides, training)
    if self.use_bias:
      outputs = outputs + tf.cast(self.bias, outputs.dtype)
    if self.activation is not None:
      outputs = self.activation(outputs)
    return outputs
