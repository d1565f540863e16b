"""Networks that learn from the first step (the first-epoch divergence's root
causes), finite validation, and the CIFAR recipe's objects."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import autonl_tf
from autonl_tf import constants
from autonl_tf.data import DataConfig
from autonl_tf.layers import MBConv
from autonl_tf import recipes
from autonl_tf.training.trainer import build_and_compile, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def _cifar_config(model_dir, **kw):
  data = DataConfig("synthetic", input_size=32, num_classes=10, seed=0)
  base = dict(arch="autonl-s-cifar", data=data, model_dir=str(model_dir), epochs=2,
              steps_per_epoch=4, batch_size=16, validation_split="validation",
              validation_steps=2, eval_steps=2, bn_recalibration_batches=0, verbose=0)
  base.update(kw)
  return recipes.train_config("cifar", **base)


def test_cifar_recipe_builds_what_it_says():
  config = _cifar_config("/tmp/unused", epochs=30, steps_per_epoch=100, batch_size=128)
  model = build_and_compile(config, num_classes=10, steps_per_epoch=100)
  opt = model.optimizer
  assert isinstance(opt, keras.optimizers.SGD) and opt.nesterov
  assert float(opt.momentum) == pytest.approx(0.9) and not opt.use_ema
  # 0.1 per 128 images, one warm-up epoch (100 steps), cosine to 0 at 3000.
  sched = opt._learning_rate
  peak = 0.2 * 128 / 256
  for step, want in [(0, 0.0), (50, peak / 2), (100, peak),
                     (100 + 1450, peak * 0.5 * (1 + math.cos(math.pi * 0.5))), (3000, 0.0)]:
    assert float(sched(step)) == pytest.approx(want, abs=1e-6), step
  kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
  others = [w for w in model.trainable_weights if not w.path.endswith("kernel")]
  assert kernels and all(float(w.regularizer.l2) == pytest.approx(5e-4 / 2) for w in kernels)
  assert all(w.regularizer is None for w in others)
  bns = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
  assert bns and all(l.momentum == pytest.approx(0.9) for l in bns)
  assert model.get_layer("dropout").rate == pytest.approx(0.2)


def test_recipe_flags_override_only_what_is_given():
  code = (
      "import json; from absl import flags;"
      "from flags import train as t; t.define_train_flags();"
      "flags.FLAGS(['x', '--recipe=cifar', '--lr=0.05', '--model_dir=/tmp/x']);"
      "import dataclasses; c = t.train_config_from_flags(); d = dataclasses.asdict(c);"
      "print(json.dumps({k: d[k] for k in ('optimizer', 'nesterov', 'lr_per_256', "
      "'weight_decay', 'lr_schedule', 'ema_momentum', 'batch_size', 'bn_momentum')}))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, env=dict(os.environ, PYTHONPATH=ROOT)).stdout
  got = json.loads(out.strip().splitlines()[-1])
  assert got == {"optimizer": "sgd", "nesterov": True, "lr_per_256": 0.05, "weight_decay": 5e-4,
                 "lr_schedule": "cosine", "ema_momentum": 0.0, "batch_size": 128,
                 "bn_momentum": 0.9}
  with pytest.raises(ValueError, match="unknown recipe 'imagenette'"):
    recipes.recipe("imagenette", "train")


def test_validation_after_a_few_steps_is_finite(tmp_path):
  keras.utils.set_random_seed(0)
  metrics = train(_cifar_config(tmp_path / "run"), log=None)
  with open(tmp_path / "run" / "log.csv") as f:
    rows = list(__import__("csv").DictReader(f))
  assert len(rows) == 2
  for row in rows:
    for key in ("loss", "ce", "val_loss", "val_ce", "val_accuracy"):
      assert math.isfinite(float(row[key])), (key, row)
    assert float(row["val_ce"]) < 10 * math.log(10)
  assert math.isfinite(metrics["top1"])


def test_keras_model_macs_by_hand_and_against_the_published_mobilenet_v2():
  from autonl_tf.models import anchors
  inputs = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)       # 9*3*8*4*4 = 3456
  x = keras.layers.DepthwiseConv2D(3, padding="same")(x)                 # 9*8*4*4 = 1152
  x = keras.layers.Conv2D(12, 1, groups=4)(x)                           # 1*2*12*16 = 384
  x = keras.layers.GlobalAveragePooling2D()(x)                           # 4*4*12 = 192
  x = keras.layers.Dense(10)(x)                                          # 120
  assert anchors.keras_model_macs(keras.Model(inputs, x)) == 3456 + 1152 + 384 + 192 + 120
  # keras.applications.MobileNetV2 1.0 at 224px with 1000 classes: the same
  # count as our analytic MobileNetV2 preset (published: 300M).
  model = anchors.build_anchor("keras:mobilenet_v2:1.0", (224, 224, 3), 1000, dropout_rate=0.0)
  from autonl_tf import arch, flops
  ours = flops.count(arch.load("mobilenet-v2"), 224, 1000).macs
  assert anchors.keras_model_macs(model) == ours
  assert ours == pytest.approx(300e6, rel=0.01)
  with pytest.raises(ValueError, match="keras:<application>:<alpha>"):
    anchors.parse("keras:resnet:1")
  with pytest.raises(ValueError, match="width multiplier"):
    anchors.parse("keras:mobilenet_v2:wide")


def test_evaluation_reports_the_largest_logit_and_non_finite_images():
  from autonl_tf.training import evaluation
  logits = np.array([[1.0, -250.0, 3.0], [np.nan, 0.0, 1.0], [7.0, 2.0, np.inf], [0.5, 99.0, 0.0]])
  labels = np.array([2, 2, 0, 1])
  ds = tf.data.Dataset.from_tensor_slices((np.arange(4.0), labels)).batch(2)
  table = {0.0: 0, 1.0: 1, 2.0: 2, 3.0: 3}
  result = evaluation.evaluate(lambda x: logits[[table[float(v)] for v in x.numpy()]], ds,
                               log=None)
  assert result["max_abs_logit"] == 250.0 and result["non_finite"] == 2
  assert result["examples"] == 4 and result["top1"] == pytest.approx(75.0)
