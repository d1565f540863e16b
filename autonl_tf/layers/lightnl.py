"""The lightweight non-local block (LightNL) and the conventional non-local
block it replaces (DESIGN.md section 1)."""

import keras
import tensorflow as tf

from autonl_tf import constants
from autonl_tf import flops
from autonl_tf.saving import KERAS_PACKAGE



def _static_hwc(input_shape, layer_name):
  if len(input_shape) != 4:
    raise ValueError(f"{layer_name} expects a 4-D [N, H, W, C] input, got shape {tuple(input_shape)}")
  h, w, c = input_shape[1:]
  if h is None or w is None or c is None:
    raise ValueError(f"{layer_name} needs static H, W and C (the product order and the "
                     f"1/(H*W) scale depend on them), got shape {tuple(input_shape)}")
  return int(h), int(w), int(c)


def lightnl_aggregate(x, ratio, stride, order_a):
  """`y = (q k^T) v / (H*W)` of DESIGN.md section 1, channels last.

  Args:
    x: `[N, H, W, C]` tensor with static H, W, C.
    ratio: channel ratio r; q and k are the first `int(r*C)` channels.
    stride: spatial stride s of k and v (`x[:, ::s, ::s]`).
    order_a: True evaluates `(q k^T) v`, False `q (k^T v)`.

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
  k = tf.reshape(xs[..., :rc], [-1, hs * ws, rc])
  v = tf.reshape(xs, [-1, hs * ws, c])
  if order_a:
    y = tf.matmul(tf.matmul(q, k, transpose_b=True), v)  # [N, HW, HWs] @ [N, HWs, C]
  else:
    y = tf.matmul(q, tf.matmul(k, v, transpose_a=True))  # [N, HW, r] @ [N, r, C]
  return tf.reshape(y, [-1, h, w, c])


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class LightNL(keras.layers.Layer):
  """Lightweight non-local block (Li et al. 2020, DESIGN.md section 1).

  With `x` of shape `[N, H, W, C]`: `q = x[..., :int(r*C)]`,
  `k = x[:, ::s, ::s, :int(r*C)]`, `v = x[:, ::s, ::s, :]`,
  `y = (q k^T) v / (H*W)` (no softmax, no 1x1 transforms), and the output is
  `BN(DepthwiseConv3x3(y)) + x`. The product is evaluated in whichever order
  is strictly cheaper for the static shape (`(q k^T) v` costs
  `HW*HW/s^2*C*(1+r)` MACs, `q (k^T v)` costs `(HW + HW/s^2)*C^2*r`); BN gamma
  starts at zero, so a fresh block is the identity.

  Args:
    ratio: channel ratio r in (0, 1] for the query and key.
    stride: spatial subsampling s >= 1 of key and value.
    bn_momentum: batch-norm momentum.
    bn_epsilon: batch-norm epsilon.
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: `[N, H, W, C]` tensor with static H, W and C.
    training: whether BN uses batch statistics.

  Example:
  >>> layer = LightNL(ratio=0.25, stride=2)
  >>> y = layer(tf.random.normal([2, 14, 14, 96]))
  """

  def __init__(self, ratio=0.25, stride=1, bn_momentum=constants.BN_MOMENTUM,
               bn_epsilon=constants.BN_EPSILON, sync_bn=False, **kwargs):
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
    self.order_a = None

  def build(self, input_shape):
    h, w, c = _static_hwc(input_shape, "LightNL")
    if int(self.ratio * c) < 1:
      raise ValueError(f"LightNL ratio {self.ratio} of {c} channels leaves no query channel")
    self.order_a = flops.use_order_a(h, w, c, self.ratio, self.stride)
    self.nl_dw = keras.layers.DepthwiseConv2D(
        3, padding="same", use_bias=False,
        depthwise_initializer=constants.conv_initializer(), name="nl_dw")
    self.nl_bn = constants.batch_norm("nl_bn", "zeros", self.bn_momentum, self.bn_epsilon,
                                      self.sync_bn)
    self.nl_dw.build(input_shape)
    self.nl_bn.build(input_shape)

  def call(self, inputs, training=None):
    y = lightnl_aggregate(inputs, self.ratio, self.stride, self.order_a)
    return inputs + self.nl_bn(self.nl_dw(y), training=training)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(ratio=self.ratio, stride=self.stride,
                  bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon, sync_bn=self.sync_bn)
    return config


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class NonLocal(keras.layers.Layer):
  """Conventional non-local block (Wang et al. 2018), embedded-Gaussian form.

  theta, phi, g are 1x1 convs to `C/2`; `y = softmax(theta phi^T) g` over all
  `H*W` positions; output `BN(Conv1x1(y)) + x` with BN gamma at zero (identity
  at initialisation). The baseline LightNL is compared with.

  Args:
    inner_ratio: width of theta/phi/g relative to C (1/2 in the paper).
    softmax: use the softmax affinity (True) or the dot product divided by
      `H*W` (False).
    bn_momentum: batch-norm momentum.
    bn_epsilon: batch-norm epsilon.
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: `[N, H, W, C]` tensor with static H, W and C.
    training: whether BN uses batch statistics.
  """

  def __init__(self, inner_ratio=0.5, softmax=True, bn_momentum=constants.BN_MOMENTUM,
               bn_epsilon=constants.BN_EPSILON, **kwargs):
    super().__init__(**kwargs)
    self.inner_ratio = float(inner_ratio)
    self.softmax = bool(softmax)
    self.bn_momentum = bn_momentum
    self.bn_epsilon = bn_epsilon

  def build(self, input_shape):
    h, w, c = _static_hwc(input_shape, "NonLocal")
    inner = max(1, int(c * self.inner_ratio))
    conv = lambda n, name, bias: keras.layers.Conv2D(
        n, 1, use_bias=bias, kernel_initializer=constants.conv_initializer(), name=name)
    self.theta = conv(inner, "theta", True)
    self.phi = conv(inner, "phi", True)
    self.g = conv(inner, "g", True)
    self.out_conv = conv(c, "out_conv", False)
    self.out_bn = constants.batch_norm("out_bn", "zeros", self.bn_momentum, self.bn_epsilon)
    for layer in (self.theta, self.phi, self.g):
      layer.build(input_shape)
    inner_shape = tuple(input_shape[:3]) + (inner,)
    self.out_conv.build(inner_shape)
    self.out_bn.build(input_shape)

  def call(self, inputs, training=None):
    _, h, w, c = inputs.shape
    flat = lambda t: tf.reshape(t, [-1, h * w, t.shape[-1]])
    theta, phi, g = flat(self.theta(inputs)), flat(self.phi(inputs)), flat(self.g(inputs))
    affinity = tf.matmul(theta, phi, transpose_b=True)
    if self.softmax:
      affinity = tf.nn.softmax(affinity, axis=-1)
    else:
      affinity = affinity / tf.cast(h * w, affinity.dtype)
    y = tf.reshape(tf.matmul(affinity, g), [-1, h, w, g.shape[-1]])
    return inputs + self.out_bn(self.out_conv(y), training=training)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(inner_ratio=self.inner_ratio, softmax=self.softmax,
                  bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
    return config
