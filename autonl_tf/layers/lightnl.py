"""The lightweight non-local block, LightNL (Li et al., "Neural Architecture
Search for Lightweight Non-Local Networks", CVPR 2020, arXiv 2004.01961,
section 3, "Lightweight Non-Local Blocks")."""

import keras
import tensorflow as tf

from autonl_tf import constants
from autonl_tf import flops
from autonl_tf.arch import codec
from autonl_tf.layers import batch_norm
from autonl_tf.layers.common import static_hwc
from autonl_tf.saving import KERAS_PACKAGE


def second_moment_scale(x):
  """`1 / (mean(x^2) + eps)` per image, `[N, 1, 1]` in `x`'s dtype: the
  factor of q (besides `1/HW`) in LightNL's `second_moment` product (the
  mean over all of an image's positions and channels, in float32; applied
  apart from `1/HW` so that the product stays representable in float16)."""
  m = tf.reduce_mean(tf.square(tf.cast(x, tf.float32)), axis=[1, 2, 3])
  return tf.cast(1.0 / (m + constants.NL_NORM_EPSILON), x.dtype)[:, None, None]


def lightnl_aggregate(x, ratio, stride, order_a, norm="none"):
  """`y = (q k^T) v / (H*W)`, the LightNL product (arXiv 2004.01961, section 3,
  "Lightweight Non-Local Blocks": shared transformations, compact features),
  channels last.

  The product is cubic in `x`: an image whose activations are 4x the
  training batches' gets a 64x output, which the next LightNL cubes again.
  `norm="second_moment"` divides it by the image's mean square
  `m = mean(x^2)` (plus `eps = 1e-3`), which makes it
  homogeneous of degree 1 (`y(a x) = a y(x)` where `m >> eps`, like a
  convolution) and about the paper's product where `m` is about 1, the scale
  of a project BN output with unit gamma. Where `m << eps` (a residual
  block's project BN starts at gamma 0) it is the paper's product times
  `1/eps`, still cubic but small.

  Args:
    x: `[N, H, W, C]` tensor with static H, W, C.
    ratio: channel ratio r; q and k are the first `int(r*C)` channels.
    stride: spatial stride s of k and v (`x[:, ::s, ::s]`).
    order_a: True evaluates `(q k^T) v`, False `q (k^T v)`.
    norm: `none` (the paper's) or `second_moment` (`arch.NL_NORMS`).

  Returns:
    `[N, H, W, C]` tensor.
  """
  _, h, w, c = x.shape
  rc = int(ratio * c)
  xs = x[:, ::stride, ::stride, :] if stride > 1 else x
  hs, ws = xs.shape[1], xs.shape[2]
  # q is scaled by 1/(HW) before the products (same result by linearity) so
  # that the intermediate sums stay small in float16 / bfloat16.
  q = tf.reshape(x[..., :rc], [-1, h * w, rc]) * tf.cast(1.0 / (h * w), x.dtype)
  if codec.check_nl_norm(norm) == "second_moment":
    q = q * second_moment_scale(x)
  k = tf.reshape(xs[..., :rc], [-1, hs * ws, rc])
  v = tf.reshape(xs, [-1, hs * ws, c])
  if order_a:
    y = tf.matmul(tf.matmul(q, k, transpose_b=True), v)  # [N, HW, HWs] @ [N, HWs, C]
  else:
    y = tf.matmul(q, tf.matmul(k, v, transpose_a=True))  # [N, HW, r] @ [N, r, C]
  return tf.reshape(y, [-1, h, w, c])


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class LightNL(keras.layers.Layer):
  """Lightweight non-local block (arXiv 2004.01961, section 3,
  "Lightweight Non-Local Blocks").

  With `x` of shape `[N, H, W, C]`: `q = x[..., :int(r*C)]`,
  `k = x[:, ::s, ::s, :int(r*C)]`, `v = x[:, ::s, ::s, :]`,
  `y = (q k^T) v / (H*W)` (no softmax, no 1x1 transforms), and the output is
  `BN(DepthwiseConv3x3(y)) + x` (`norm="second_moment"`: `y` divided by the
  image's mean square of `x`, see `lightnl_aggregate`). The product is evaluated in whichever order
  is strictly cheaper for the static shape (`(q k^T) v` costs
  `HW*HW/s^2*C*(1+r)` MACs, `q (k^T v)` costs `(HW + HW/s^2)*C^2*r`); BN gamma
  starts at zero, so a fresh block is the identity.

  Args:
    ratio: channel ratio r in (0, 1] for the query and key.
    stride: spatial subsampling s >= 1 of key and value.
    bn_momentum: batch-norm momentum.
    bn_epsilon: batch-norm epsilon.
    sync_bn: batch statistics over all replicas of a tf.distribute strategy.
    norm: `none` (the paper's product) or `second_moment`.
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: `[N, H, W, C]` tensor with static H, W and C.
    training: whether BN uses batch statistics.

  Example:
  >>> layer = LightNL(ratio=0.25, stride=2)
  >>> y = layer(tf.random.normal([2, 14, 14, 96]))
  """

  def __init__(self, ratio=0.25, stride=1, bn_momentum=constants.BN_MOMENTUM,
               bn_epsilon=constants.BN_EPSILON, sync_bn=False, norm="none", **kwargs):
    super().__init__(**kwargs)
    if not 0 < float(ratio) <= 1:
      raise ValueError(f"LightNL ratio must be in (0, 1], got {ratio}")
    if int(stride) != stride or stride < 1:
      raise ValueError(f"LightNL stride must be a positive integer, got {stride}")
    self.ratio = float(ratio)
    self.stride = int(stride)
    self.bn_momentum = bn_momentum
    self.bn_epsilon = bn_epsilon
    self.sync_bn = bool(sync_bn)
    self.norm = codec.check_nl_norm(norm)
    self.order_a = None

  def build(self, input_shape):
    h, w, c = static_hwc(input_shape, "LightNL")
    if int(self.ratio * c) < 1:
      raise ValueError(f"LightNL ratio {self.ratio} of {c} channels leaves no query channel")
    self.order_a = flops.use_order_a(h, w, c, self.ratio, self.stride)
    self.nl_dw = keras.layers.DepthwiseConv2D(
        3, padding="same", use_bias=False,
        depthwise_initializer=constants.conv_initializer(), name="nl_dw")
    self.nl_bn = batch_norm.paper_batch_norm("nl_bn", "zeros", self.bn_momentum,
                                             self.bn_epsilon, self.sync_bn)
    self.nl_dw.build(input_shape)
    self.nl_bn.build(input_shape)

  def call(self, inputs, training=None):
    y = lightnl_aggregate(inputs, self.ratio, self.stride, self.order_a, self.norm)
    return inputs + self.nl_bn(self.nl_dw(y), training=training)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(ratio=self.ratio, stride=self.stride,
                  bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon, sync_bn=self.sync_bn,
                  norm=self.norm)
    return config
