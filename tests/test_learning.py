"""Networks that learn from the first step (the first-epoch divergence's root
causes)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import autonl_tf
from autonl_tf import constants
from autonl_tf.layers import MBConv


def _mnasnet_init(model):
  """MnasNet's initialisation of the two changed pieces: every projection BN
  gamma at 1 and the classifier uniform(+-1/sqrt(classes))."""
  for layer in model.layers:
    if isinstance(layer, MBConv):
      layer.project_bn.gamma.assign(tf.ones_like(layer.project_bn.gamma))
  k = model.get_layer("logits").kernel
  limit = 1.0 / math.sqrt(k.shape[1])
  k.assign(np.random.default_rng(0).uniform(-limit, limit, k.shape).astype("float32"))


def _ce_and_gradient_ratio(model, x, y):
  with tf.GradientTape() as tape:
    logits = model(x, training=True)
    ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
  stem, head = model.get_layer("stem_conv").kernel, model.get_layer("logits").kernel
  g_stem, g_head = tape.gradient(ce, [stem, head])
  return float(ce), float(tf.norm(g_stem) / tf.norm(g_head))


def test_fresh_network_starts_at_chance_and_its_gradient_does_not_grow_with_depth():
  # The root cause of the first-epoch divergence, on AutoNL-S's CIFAR network
  # at its real input shape: with MnasNet's initialisation the untrained
  # network's cross-entropy is far above chance and the stem's gradient is
  # tens of times the classifier's (it grows through every block), so the
  # first steps scramble the early layers.
  keras.utils.set_random_seed(0)
  model = autonl_tf.build_model("autonl-s-cifar", (32, 32, 3), 10, dropout_rate=0.0)
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(size=(16, 32, 32, 3)).astype("float32"))
  y = tf.constant(rng.integers(0, 10, 16).astype("int32"))
  ce, ratio = _ce_and_gradient_ratio(model, x, y)
  assert ce == pytest.approx(math.log(10), abs=0.1)  # chance, closed form
  assert ratio < 3.0, ratio
  _mnasnet_init(model)
  ce_old, ratio_old = _ce_and_gradient_ratio(model, x, y)
  assert ce_old > math.log(10) + 0.5 and ratio_old > 10 * ratio, (ce_old, ratio_old)


def test_dense_initializer_is_mnasnets_at_imagenet_scale():
  # +-1/sqrt(fan_in): 1/sqrt(1280) for the 1280-wide head, within 12% of
  # MnasNet's 1/sqrt(1000) for 1000 classes, and independent of the classes.
  for classes in (10, 1000):
    w = np.asarray(constants.dense_initializer()((1280, classes)))
    assert np.abs(w).max() <= 1 / math.sqrt(1280)
    assert np.abs(w).max() > 0.99 / math.sqrt(1280)
  assert 1 / math.sqrt(1280) == pytest.approx(1 / math.sqrt(1000), rel=0.12)


@pytest.mark.parametrize("block,identity", [
    ("r1_k3_s11_e3_i8_o8_se0.25_nonlocal0.5", True),  # residual: starts as the identity
    ("r1_k3_s22_e3_i8_o8", False),                     # stride 2: no residual
    ("r1_k3_s11_e3_i8_o8_noskip", False),
])
def test_residual_blocks_start_as_the_identity(block, identity):
  x = np.random.default_rng(1).normal(size=(2, 6, 6, 8)).astype("float32")
  layer = MBConv(block)
  for training in (True, False):
    y = layer(x, training=training).numpy()
    if identity:
      np.testing.assert_array_equal(y, x)
    else:
      assert np.all(layer.project_bn.gamma.numpy() == 1.0)
      assert np.abs(y).max() > 0.1
  assert not MBConv(block, zero_init_residual=False).get_config()["zero_init_residual"]
