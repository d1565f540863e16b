"""LightNL's second-moment product (`nl_norm=second_moment` on an arch file's
`#!` line): official lines unchanged, MACs by hand, the network survives
`.keras` and converts to builtin-only TFLite (float32: the same logits; int8), the
latency table prices it apart, and the search searches with it: the
supernet equals the network it derives. (The layer against NumPy and its
scale response: tests/test_layers.py.)"""

import dataclasses

import numpy as np
import pytest

import autonl_tf
from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf import latency
from autonl_tf.latency import timing
from autonl_tf.export import tflite
from autonl_tf.layers import LightNL, MBConv
from autonl_tf.models.network import arch_of
from layer_testing import randomize

BODY = "r1_k3_s11_e1_i16_o8\nr1_k5_s22_e6_i8_o16_nonlocal0.25\nr1_k3_s11_e3_i16_o16_nonlocal0.5-2\n"


def _arch(norm):
  return arch_lib.parse_arch(f"#! stem_stride=1 head_filters=64 nl_norm={norm}\n" + BODY)


def test_the_directive_round_trips_and_official_lines_stay_unchanged():
  for norm in arch_lib.NL_NORMS:
    a = _arch(norm)
    assert a.nl_norm == norm and arch_lib.parse_arch(arch_lib.format_arch(a)) == a
  assert arch_lib.format_arch(_arch("second_moment")).startswith(
      "#! stem_stride=1 head_filters=64 nl_norm=second_moment\n")
  assert "nl_norm" not in arch_lib.format_arch(_arch("none"))
  assert arch_lib.load("autonl-s").nl_norm == "none"
  with pytest.raises(ValueError, match=r"line 1: bad token 'nl_norm=softmax': unknown nl_norm "
                                       r"\(expected none, second_moment\)"):
    arch_lib.parse_arch("#! nl_norm=softmax\n" + BODY)
  with pytest.raises(ValueError, match="unknown LightNL norm 'l2'"):
    arch_lib.Arch(blocks=_arch("none").blocks, nl_norm="l2")


def test_macs_by_hand():
  # 8x8 output, C=16, r=1/4, s=1: order B = 64*4*16*2 = 8,192 (A: 64*64*20);
  # depthwise 3x3: 9*64*16 = 9,216; the mean square: 64*16 = 1,024.
  assert flops.lightnl_macs(8, 8, 16, 0.25, 1) == 8_192 + 9_216
  assert flops.lightnl_macs(8, 8, 16, 0.25, 1, "second_moment") == 8_192 + 9_216 + 1_024
  paper, normed = flops.count(_arch("none"), 16, 5), flops.count(_arch("second_moment"), 16, 5)
  # Two LightNLs, both on 8x8x16 maps: 2 * 1,024 more; no parameter more.
  assert normed.macs - paper.macs == 2 * 8 * 8 * 16
  assert normed.params == paper.params


def test_the_cifar_presets_and_32px_spaces_default_to_it():
  from autonl_tf.search.space import get_space
  for name in ("autonl-s-cifar", "autonl-l-cifar"):
    assert arch_lib.load(name).nl_norm == "second_moment", name
  for name in ("autonl-s", "autonl-l"):
    assert arch_lib.load(name).nl_norm == "none", name
  # autonl-s-cifar at 32px: its 7 LightNLs on 32x32x24, 16x16x40 (two), 8x8x80, 8x8x96,
  # 4x4x192 and 4x4x320 maps, one mean square each: 24,576 + 2 * 10,240 + 5,120 + 6,144 +
  # 3,072 + 5,120 = 64,512 MACs more than the paper's product (79,418,816).
  s_cifar = arch_lib.load("autonl-s-cifar")
  normed = flops.count(s_cifar, 32, 10)
  paper = flops.count(dataclasses.replace(s_cifar, nl_norm="none"), 32, 10)
  assert normed.macs - paper.macs == 64_512 and paper.macs == 79_418_816
  assert {get_space(n).nl_norm for n in ("cifar", "autonl-cifar")} == {"second_moment"}
  assert {get_space(n).nl_norm for n in ("autonl-imagenet", "tiny")} == {"none"}
  assert get_space("cifar", nl_norm="none").nl_norm == "none"


def test_it_builds_saves_and_converts(tmp_path):
  import keras
  model = autonl_tf.build_model(_arch("second_moment"), (16, 16, 3), 5, dropout_rate=0.0)
  # Its own generator: layer_testing's shared one gives weights that depend on which tests
  # ran before in the same process (a CI worker's int8 parity fell to 5/8 with one such draw).
  randomize(model, np.random.default_rng(0))
  assert {b.nl.norm for b in model.layers if isinstance(b, MBConv) and b.nl} == {"second_moment"}
  paper = autonl_tf.build_model(_arch("none"), (16, 16, 3), 5, dropout_rate=0.0)
  paper.set_weights(model.get_weights())
  x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
  assert np.abs(model(x, training=False).numpy() - paper(x, training=False).numpy()).max() > 1e-3
  model.save(tmp_path / "m.keras")
  restored = keras.saving.load_model(tmp_path / "m.keras")
  np.testing.assert_array_equal(model(x, training=False).numpy(),
                                restored(x, training=False).numpy())
  assert arch_of(restored).nl_norm == "second_moment"
  assert arch_of(paper).nl_norm == "none"
  flat = tflite.convert(model, "float32")
  assert tflite.non_builtin_ops(tflite.op_counts(flat)) == []
  images = np.random.default_rng(1).uniform(0, 255, size=(3, 16, 16, 3)).astype("float32")
  report = tflite.parity(model, tflite.TFLiteModel(content=flat), images)
  assert report["max_abs_logit_diff"] < 1e-3 * max(1.0, report["logit_range"])
  # int8: builtin ops too; the per-image division runs in float (DEQUANTIZE -> DIV).
  calibration = list(np.random.default_rng(2).uniform(0, 255, size=(20, 16, 16, 3)).astype("float32"))
  flat = tflite.convert(model, "int8", calibration)
  ops = tflite.op_counts(flat)
  assert tflite.non_builtin_ops(ops) == [] and {"SQUARE", "DIV"} <= set(ops)
  report = tflite.parity(model, tflite.TFLiteModel(content=flat), np.stack(calibration[:8]))
  assert report["top1_agreement"] >= 0.75, report
  assert report["mean_abs_logit_diff"] < 0.02 * report["logit_range"], report


def test_latency_pieces_carry_the_norm():
  keys = {norm: [p.key for p in latency.arch_pieces(_arch(norm), 16, 5)]
          for norm in arch_lib.NL_NORMS}
  assert keys["none"][3] == "lightnl 8x8x16 r0.25 s1"
  assert keys["second_moment"][3] == "lightnl 8x8x16 r0.25 s1 second_moment"
  # Only the LightNL entries differ.
  assert [k for k in keys["none"] if not k.startswith("lightnl")] == \
      [k for k in keys["second_moment"] if not k.startswith("lightnl")]
  piece = latency.arch_pieces(_arch("second_moment"), 16, 5)[3]
  nl = [layer for layer in timing._piece_model(piece).layers if isinstance(layer, LightNL)]
  assert [layer.norm for layer in nl] == ["second_moment"]


@pytest.mark.parametrize("forced", [{}, {"r1": 0, "s1": 0}], ids=["all-on", "r0.125-s2"])
def test_a_second_moment_supernet_equals_the_network_it_derives(forced):
  from autonl_tf.search import SearchSpace, Stage, copy_child_weights
  from search_testing import make_net
  from search_testing import randomize as randomize_supernet
  space = SearchSpace(name="tiny", stages=(Stage(16, 2, 1), Stage(24, 2, 2, 0.25)),
                      stem_filters=8, stem_stride=1, first_block="r1_k3_s11_e1_i8_o8",
                      head_filters=32)
  net = make_net(space, 12, 5, nl_norm="second_moment")
  randomize_supernet(net)
  net.reset_margins()
  for b in net.blocks:
    b.forced = {k: v for k, v in forced.items() if k in b.decisions}
  arch = net.derive()
  assert arch.nl_norm == "second_moment" and sum(b.has_nonlocal for b in arch.blocks) == 4
  child = autonl_tf.build_model(arch, (12, 12, 3), 5, dropout_rate=0.0)
  copy_child_weights(net, child)
  # Images of two scales: the second moment differs per image.
  x = np.random.default_rng(2).normal(size=(2, 12, 12, 3)) * np.array([1.0, 5.0])[:, None, None, None]
  x = x.astype("float32")
  got = net(x, training=False).numpy()
  np.testing.assert_allclose(got, child(x, training=False).numpy(), rtol=1e-4, atol=1e-5)
  # The cost counts the mean squares: 4 LightNLs more than the paper's product.
  assert float(net.macs()) == flops.count(arch, 12, 5).macs
  paper = dataclasses.replace(arch, nl_norm="none")
  assert flops.count(arch, 12, 5).macs - flops.count(paper, 12, 5).macs == sum(
      b.out_size[0] * b.out_size[1] * b.spec.out_filters
      for b in flops.count(arch, 12, 5).blocks if b.spec.has_nonlocal)
  # ... and the products differ from the paper's.
  same = make_net(space, 12, 5)
  same.set_weights(net.get_weights())
  for b, c in zip(same.blocks, net.blocks):
    b.forced = c.forced
  assert np.abs(same(x, training=False).numpy() - got).max() > 1e-3
