"""The reference networks of the CIFAR table: ResNet-20 (He et al. 2016,
section 4.2) against the paper's 0.27M parameters and a hand count of its
MACs; MobileNetV2 adapted to 32px (`mobilenetv2-cifar`) against a hand count
from its stage table; each builds, trains a step, round-trips through
`.keras` and converts to TFLite with the Keras model's outputs."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from autonl_tf import arch as arch_lib
from autonl_tf import build_model
from autonl_tf import flops
from autonl_tf.models import anchors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def resnet20_by_hand():
  """(MACs, trainable params) of ResNet-20 at 32px, 10 classes: a 3x3 conv of
  16, then 3 stages of 3 basic blocks (two 3x3 convs each) of 16/32/64
  filters at 32/16/8 px, option-A shortcuts (no weights), pooling, dense."""
  macs = 32 * 32 * 3 * 3 * 3 * 16
  params = 3 * 3 * 3 * 16 + 2 * 16  # stem conv, its BN's gamma and beta
  cin = 16
  for filters, size in ((16, 32), (32, 16), (64, 8)):
    for _ in range(3):
      for conv_in in (cin, filters):
        macs += size * size * 3 * 3 * conv_in * filters
        params += 3 * 3 * conv_in * filters + 2 * filters
      cin = filters
  macs += 8 * 8 * 64 + 64 * 10  # global average pool, dense
  params += 64 * 10 + 10
  return macs, params


def test_resnet20_matches_the_paper_and_a_hand_count():
  model = anchors.build_anchor("resnet20", (32, 32, 3), 10)
  macs, params = resnet20_by_hand()
  assert (macs, params) == (40_555_136, 269_722)
  assert anchors.keras_model_macs(model) == macs
  assert anchors.keras_model_params(model) == params
  assert round(params / 1e6, 2) == 0.27  # He et al. 2016, table 6
  assert abs(macs / 41e6 - 1) < 0.02  # "~41M"
  convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
  assert len(convs) + 1 == 20  # 19 convolutions and the classifier: 20 weight layers


def test_option_a_shortcut_subsamples_and_zero_pads():
  x = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype("float32")
  from autonl_tf.layers import ZeroPadShortcut
  got = ZeroPadShortcut(32, 2)(x).numpy()
  want = np.zeros((2, 4, 4, 32), "float32")
  want[..., 8:24] = x[:, ::2, ::2, :]
  np.testing.assert_array_equal(got, want)


def mobilenetv2_cifar_by_hand(width_divisor=1):
  """MACs of MobileNetV2's table 2 (t, c, n, s) at 32px with the stem and the
  24-channel stage at stride 1: expand 1x1 (t > 1), 3x3 depthwise, project
  1x1 per block; stem 3x3 conv of 32, head 1x1 conv to 1280, pool, dense."""
  size, cin = 32, 32
  macs = size * size * 3 * 3 * 3 * 32
  for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
                     (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
    for i in range(n):
      stride = s if i == 0 else 1
      out = size // stride
      expanded = cin * t
      macs += (size * size * cin * expanded if t > 1 else 0) + out * out * 9 * expanded
      macs += out * out * expanded * c
      size, cin = out, c
  return macs + size * size * 320 * 1280 + size * size * 1280 + 1280 * 10


def test_mobilenetv2_cifar_matches_a_hand_count():
  arch = arch_lib.load("mobilenetv2-cifar")
  assert flops.count(arch, 32, 10).macs == mobilenetv2_cifar_by_hand() == 87_996_928
  assert arch.activation == "relu6" and arch.stem_stride == 1
  assert all(b.kernel_sizes == (3,) and b.se_ratio == 0 and b.nl_ratio == 0 for b in arch.blocks)
  assert [b.expand_ratio for b in arch.blocks] == [1] + [6] * 6
  # Three downsamplings, as autonl-s-cifar's: 32 -> 16 -> 8 -> 4.
  strides = [b.strides[0] for b in arch_lib.expand_blocks(arch)]
  assert strides.count(2) == 3
  hand = arch_lib.load("autonl-s-cifar")
  assert strides.count(2) == [b.strides[0] for b in arch_lib.expand_blocks(hand)].count(2)
  # The width suffix is the codec's width transform, the head included.
  half = arch_lib.load("mobilenetv2-cifar:0.5")
  assert half == arch_lib.scale_width(arch, 0.5) and half.head_filters == 640
  with pytest.raises(ValueError, match=r"^arch 'mobilenetv2-cifar:abc': the width multiplier "
                                       r"after ':' must be a number in \(0, 8\], got 'abc'$"):
    arch_lib.load("mobilenetv2-cifar:abc")


def build(name):
  if anchors.is_anchor(name):
    return anchors.build_anchor(name, (32, 32, 3), 10)
  return build_model(arch_lib.load(name), (32, 32, 3), 10)


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2-cifar:0.5"])
def test_every_anchor_trains_a_step_saves_and_converts_to_tflite(name, tmp_path):
  from autonl_tf import io
  from autonl_tf.export import tflite
  model = build(name)
  model.compile(optimizer=keras.optimizers.SGD(0.1),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  rng = np.random.default_rng(1)
  x = rng.normal(size=(8, 32, 32, 3)).astype("float32")
  y = rng.integers(0, 10, 8)
  before = [w.numpy().copy() for w in model.trainable_weights]
  # Two steps: a residual MBConv branch starts at zero (its last BN scale), so its other
  # weights get their first gradient at the second step.
  losses = [float(model.train_on_batch(x, y)) for _ in range(2)]
  assert np.isfinite(losses).all()
  frozen = [w.path for b, w in zip(before, model.trainable_weights) if np.array_equal(b, w.numpy())]
  # Deep in a branch that was zero one step ago a BN scale's step can still round away in
  # float32 (1 + 1e-9 == 1); nothing else stays where it was.
  assert all(p.endswith(("bn/gamma", "bn/beta")) for p in frozen), frozen
  assert len(frozen) < 0.1 * len(before), frozen
  path = str(tmp_path / "model.keras")
  io.save_model(model, path)
  again = keras.saving.load_model(path, compile=False)
  np.testing.assert_allclose(again(x, training=False), model(x, training=False), atol=1e-5)
  images = rng.uniform(0, 255, size=(4, 32, 32, 3)).astype("float32")
  flat = tflite.convert(model, "float32")
  got = tflite.TFLiteModel(content=flat)(images)
  want = tflite.keras_logits(model, images)
  assert np.abs(want).max() > 1e-3
  np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_profile_takes_the_anchors_by_name():
  tool = os.path.join(ROOT, "tools", "profile.py")
  run = lambda arch: subprocess.run([sys.executable, tool, f"--arch={arch}", "--input_size=32",
                                     "--num_classes=10"], capture_output=True, text=True,
                                    timeout=300)
  proc = run("resnet20")
  assert proc.returncode == 0, proc.stderr
  assert "total: 40,555,136 MACs (40.6M), 269,722 params (0.27M)" in proc.stdout
  proc = run("mobilenetv2-cifar")
  assert proc.returncode == 0, proc.stderr
  assert "87,996,928" in proc.stdout
  proc = run("mobilenetv2-cifar:x")
  assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
      "error: arch 'mobilenetv2-cifar:x': the width multiplier after ':' must be a number in "
      "(0, 8], got 'x'")
