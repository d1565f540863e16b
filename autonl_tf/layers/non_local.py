"""The conventional non-local block (Wang et al., "Non-local Neural
Networks", CVPR 2018), the baseline LightNL replaces."""

import keras
import tensorflow as tf

from autonl_tf import constants
from autonl_tf.layers import batch_norm
from autonl_tf.layers.common import static_hwc
from autonl_tf.saving import KERAS_PACKAGE


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
    h, w, c = static_hwc(input_shape, "NonLocal")
    inner = max(1, int(c * self.inner_ratio))
    conv = lambda n, name, bias: keras.layers.Conv2D(
        n, 1, use_bias=bias, kernel_initializer=constants.conv_initializer(), name=name)
    self.theta = conv(inner, "theta", True)
    self.phi = conv(inner, "phi", True)
    self.g = conv(inner, "g", True)
    self.out_conv = conv(c, "out_conv", False)
    self.out_bn = batch_norm.paper_batch_norm("out_bn", "zeros", self.bn_momentum,
                                              self.bn_epsilon)
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
