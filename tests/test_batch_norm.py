"""The fused-kernel batch norm (autonl_tf/layers/batch_norm.py) against Keras'
BatchNormalization and a NumPy reference: outputs, gradients and moving
statistics; and which calls take the fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from autonl_tf.layers import BatchNormalization
from layer_testing import RNG


def pair(momentum=0.9, epsilon=1e-3, shape=(4, 5, 6, 8), **kwargs):
  """Ours and Keras', built on `shape` with the same random weights."""
  ours = BatchNormalization(momentum=momentum, epsilon=epsilon, **kwargs)
  theirs = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, **kwargs)
  for layer in (ours, theirs):
    layer.build(shape)
  for a, b in zip(ours.weights, theirs.weights):
    value = (RNG.uniform(0.5, 1.5, b.shape) if "variance" in b.path
             else RNG.normal(size=b.shape)).astype("float32")
    a.assign(value)
    b.assign(value)
  return ours, theirs


def call(layer, x, training):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = layer(x, training=training)
    loss = tf.reduce_sum(y * tf.cos(y))  # a non-trivial upstream gradient
  grads = tape.gradient(loss, [x] + layer.trainable_weights)
  return [y.numpy()] + [g.numpy() for g in grads] + [layer.moving_mean.numpy(),
                                                     layer.moving_variance.numpy()]


@pytest.mark.parametrize("shape", [(4, 5, 6, 8), (1, 1, 1, 3), (2, 3, 3, 16)])
def test_training_call_matches_keras_and_numpy(shape):
  x = tf.constant((RNG.normal(size=shape) * 3 + 1).astype("float32"))
  ours, theirs = pair(shape=shape)
  mean0, var0 = ours.moving_mean.numpy(), ours.moving_variance.numpy()
  gamma, beta = ours.gamma.numpy(), ours.beta.numpy()
  got, expected = call(ours, x, True), call(theirs, x, True)
  for a, b in zip(got, expected):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  # NumPy: biased batch variance in the normalisation and in the moving average.
  xs = x.numpy().astype(np.float64).reshape(-1, shape[-1])
  mean, var = xs.mean(0), xs.var(0)
  y = (x.numpy() - mean) / np.sqrt(var + 1e-3) * gamma + beta
  np.testing.assert_allclose(got[0], y, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(got[-2], 0.9 * mean0 + 0.1 * mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got[-1], 0.9 * var0 + 0.1 * var, rtol=1e-5, atol=1e-6)
  assert np.all(np.isfinite(got[-1]))


def test_inference_and_frozen_calls_match_keras():
  x = tf.constant(RNG.normal(size=(3, 4, 4, 8)).astype("float32"))
  ours, theirs = pair()
  for training in (False, None):
    for a, b in zip(call(ours, x, training), call(theirs, x, training)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  ours.trainable = theirs.trainable = False  # a frozen BN uses its moving statistics
  np.testing.assert_allclose(ours(x, training=True).numpy(), theirs(x, training=True).numpy(),
                             rtol=1e-5, atol=1e-5)


def op_types(layer, training, shape=(2, 4, 4, 8)):
  @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
  def forward(x):
    return layer(x, training=training)
  return {op.type for op in forward.get_concrete_function().graph.get_operations()}


def test_only_plain_training_calls_take_the_fused_kernel():
  ours, _ = pair()
  assert "FusedBatchNormV3" in op_types(ours, True)
  assert "FusedBatchNormV3" not in op_types(ours, False)
  synced = BatchNormalization(synchronized=True)
  synced.build((2, 4, 4, 8))
  assert "FusedBatchNormV3" not in op_types(synced, True)   # cross-replica moments: Keras'
  dense = BatchNormalization()
  dense.build((2, 8))
  assert "FusedBatchNormV3" not in op_types(dense, True, (2, 8))


def test_momentum_set_after_building_is_used():
  # evaluation.recalibrate_batch_norm sets momentum 0 to read one batch's statistics.
  x = tf.constant(RNG.normal(size=(4, 3, 3, 8)).astype("float32"))
  ours, _ = pair()
  ours.momentum = 0.0
  ours(x, training=True)
  np.testing.assert_allclose(ours.moving_mean.numpy(), x.numpy().reshape(-1, 8).mean(0),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ours.moving_variance.numpy(), x.numpy().reshape(-1, 8).var(0),
                             rtol=1e-4, atol=1e-6)


def test_mixed_bfloat16_matches_keras():
  x = tf.constant(RNG.normal(size=(4, 5, 5, 8)).astype("float32"))
  ours, theirs = pair(dtype="mixed_bfloat16")
  xb = tf.cast(x, tf.bfloat16)
  a, b = ours(xb, training=True), theirs(xb, training=True)
  assert a.dtype == b.dtype == tf.bfloat16
  np.testing.assert_allclose(tf.cast(a, tf.float32).numpy(), tf.cast(b, tf.float32).numpy(),
                             rtol=2e-2, atol=2e-2)
  np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(),
                             rtol=1e-5)


@pytest.mark.parametrize("scale,center", [(False, True), (True, False), (False, False)])
def test_without_gamma_or_beta_matches_keras(scale, center):
  x = tf.constant(RNG.normal(size=(3, 4, 4, 8)).astype("float32"))
  ours, theirs = pair(scale=scale, center=center)
  assert "FusedBatchNormV3" in op_types(ours, True)
  for a, b in zip(call(ours, x, True), call(theirs, x, True)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_float64_stays_with_keras():
  layer = BatchNormalization(dtype="float64")
  layer.build((2, 4, 4, 8))

  @tf.function(input_signature=[tf.TensorSpec((2, 4, 4, 8), tf.float64)])
  def forward(x):
    return layer(x, training=True)
  ops = {op.type for op in forward.get_concrete_function().graph.get_operations()}
  assert "FusedBatchNormV3" not in ops
  assert forward(tf.ones((2, 4, 4, 8), tf.float64)).dtype == tf.float64
