"""The depthwise conv's strip-wise kernel gradient (autonl_tf/layers/depthwise.py)
against TensorFlow's own gradient and a NumPy one, and the mechanism itself:
every kernel-gradient op it emits is at most 3 wide (oneDNN's fast path)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from autonl_tf.layers import DepthwiseConv2D
from autonl_tf.layers.depthwise import depthwise_conv2d, strip_widths
from layer_testing import RNG


@pytest.mark.parametrize("k,s,expected", [
    (3, 1, None), (5, 1, [3, 2]), (7, 1, [3, 2, 2]), (7, 2, [3, 2, 2]), (9, 2, [3, 3, 3]),
    (4, 2, [2, 2]), (11, 1, [3, 3, 3, 2]), (7, 3, None), (9, 3, [3, 3, 3])])
def test_strip_widths(k, s, expected):
  assert strip_widths(k, s) == expected


def numpy_kernel_grad(x, dy, k, s):
  """dW[i, j, c] = sum over n, h, w of x_pad[n, h*s + i, w*s + j, c] * dy[n, h, w, c]
  with TensorFlow's SAME padding."""
  _, height, width, _ = x.shape
  _, ho, wo, _ = dy.shape
  pad = lambda size, out: max((out - 1) * s + k - size, 0) // 2
  xp = np.pad(x, [(0, 0), (pad(height, ho), k), (pad(width, wo), k), (0, 0)])
  grad = np.zeros((k, k, x.shape[3], 1))
  for i in range(k):
    for j in range(k):
      window = xp[:, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s, :]
      grad[i, j, :, 0] = np.einsum("nhwc,nhwc->c", window.astype(np.float64), dy)
  return grad


def gradients(conv, x, kernel, dy):
  with tf.GradientTape() as tape:
    tape.watch([x, kernel])
    y = conv(x, kernel)
    loss = tf.reduce_sum(y * dy)
  return [y.numpy()] + [g.numpy() for g in tape.gradient(loss, [x, kernel])]


@pytest.mark.parametrize("k,s,size", [(5, 1, (7, 8)), (7, 1, (8, 8)), (7, 2, (9, 8)),
                                      (7, 2, (8, 7)), (5, 2, (4, 4))])
def test_gradients_match_tensorflow_and_numpy(k, s, size):
  x = tf.constant(RNG.normal(size=(3,) + size + (20,)).astype("float32"))
  kernel = tf.constant(RNG.normal(size=(k, k, 20, 1)).astype("float32"))
  out = [-(-d // s) for d in size]
  dy = RNG.normal(size=(3, out[0], out[1], 20)).astype("float32")
  ours = gradients(lambda x, w: depthwise_conv2d(x, w, (s, s), training=True), x, kernel, dy)
  theirs = gradients(lambda x, w: tf.nn.depthwise_conv2d(x, w, [1, s, s, 1], "SAME"), x,
                     kernel, dy)
  np.testing.assert_array_equal(ours[0], theirs[0])           # forward: the same op
  np.testing.assert_array_equal(ours[1], theirs[1])           # input gradient: the same op
  reference = numpy_kernel_grad(x.numpy(), dy, k, s)
  np.testing.assert_allclose(ours[2], reference, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(theirs[2], reference, rtol=1e-4, atol=1e-4)


def kernel_grad_widths(k, s, training=True):
  """Widths of the kernel-gradient ops in the traced gradient graph."""
  x = tf.TensorSpec([None, 8, 8, 16], tf.float32)  # any batch size

  @tf.function(input_signature=[x])
  def grad(x):
    kernel = tf.ones([k, k, 16, 1])
    with tf.GradientTape() as tape:
      tape.watch(kernel)
      y = depthwise_conv2d(x, kernel, (s, s), training=training)
    return tape.gradient(y, kernel)

  ops = grad.get_concrete_function().graph.get_operations()
  return [int(tf.get_static_value(op.inputs[1])[1]) for op in ops
          if op.type == "DepthwiseConv2dNativeBackpropFilter"]


@pytest.mark.parametrize("k,s,expected", [(7, 1, [3, 2, 2]), (7, 2, [3, 2, 2]), (5, 1, [3, 2]),
                                          (3, 2, [3])])
def test_every_kernel_gradient_op_is_at_most_3_wide(k, s, expected):
  assert sorted(kernel_grad_widths(k, s), reverse=True) == expected


@pytest.mark.parametrize("training", [False, None])
def test_calls_outside_training_are_the_plain_op(training):
  assert kernel_grad_widths(7, 1, training) == [7]


def test_layer_matches_keras_in_training_and_inference():
  x = tf.constant(RNG.normal(size=(2, 9, 9, 24)).astype("float32"))
  ours = DepthwiseConv2D(7, strides=2, padding="same", use_bias=True)
  theirs = keras.layers.DepthwiseConv2D(7, strides=2, padding="same", use_bias=True)
  ours.build(x.shape)
  theirs.build(x.shape)
  for a, b in zip(ours.weights, theirs.weights):
    b.assign(RNG.normal(size=b.shape).astype("float32"))
    a.assign(b)
  for training in (True, False):
    results = []
    for layer in (ours, theirs):
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(y * y)
      results.append([y] + tape.gradient(loss, [x] + layer.trainable_weights))
    for a, b in zip(*results):
      np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-3)


def test_layer_takes_the_strip_gradient_in_training_only():
  layer = DepthwiseConv2D(7, padding="same")
  layer.build((2, 8, 8, 16))

  def filter_grad_ops(training):
    @tf.function(input_signature=[tf.TensorSpec([2, 8, 8, 16], tf.float32)])
    def grad(x):
      with tf.GradientTape() as tape:
        y = layer(x, training=training)
      return tape.gradient(y, layer.kernel)
    return [op for op in grad.get_concrete_function().graph.get_operations()
            if op.type == "DepthwiseConv2dNativeBackpropFilter"]

  assert len(filter_grad_ops(True)) == 3      # 7 = 3 + 2 + 2
  assert len(filter_grad_ops(False)) == 1     # TensorFlow's own gradient


def test_mixed_bfloat16_gradients_match_tensorflow():
  x = tf.constant(RNG.normal(size=(2, 8, 8, 16)), tf.bfloat16)
  kernel = tf.constant(RNG.normal(size=(7, 7, 16, 1)), tf.bfloat16)
  dy = tf.constant(RNG.normal(size=(2, 4, 4, 16)), tf.bfloat16)
  ours = gradients(lambda x, w: depthwise_conv2d(x, w, 2, training=True), x, kernel, dy)
  theirs = gradients(lambda x, w: tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], "SAME"), x,
                     kernel, dy)
  for a, b in zip(ours, theirs):
    assert a.dtype == b.dtype
    scale = np.abs(b.astype(np.float32)).max()
    np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), atol=0.02 * scale)


def test_a_network_trains_its_7x7_and_mixed_kernels_through_the_strips():
  # MBConv -> MixedDepthwiseConv2D -> DepthwiseConv2D: `training` reaches the inner
  # convs through Keras' call context.
  from autonl_tf.models import build_model
  model = build_model(["r1_k7_s11_e3_i16_o16", "r1_k3.5.7_s22_e3_i16_o24"], input_shape=(8, 8, 3),
                      num_classes=4)

  @tf.function(input_signature=[tf.TensorSpec([2, 8, 8, 3], tf.float32)])
  def grad(x):
    with tf.GradientTape() as tape:
      y = model(x, training=True)
    return tape.gradient(y, model.trainable_weights)

  ops = grad.get_concrete_function().graph.get_operations()
  widths = sorted(int(tf.get_static_value(op.inputs[1])[1]) for op in ops
                  if op.type == "DepthwiseConv2dNativeBackpropFilter")
  # block 1: k7 (3+2+2); block 2, stride 2: its k3 group (TensorFlow's own), k5 (3+2), k7 (3+2+2)
  assert widths == [2, 2, 2, 2, 2, 3, 3, 3, 3]


def test_no_strips_when_switched_off(monkeypatch):
  from autonl_tf.layers import depthwise
  monkeypatch.setattr(depthwise, "USE_STRIPS", False)
  assert kernel_grad_widths(7, 1) == [7]
