"""The network-wide activation (`swish`, `hard_swish`, `relu6`) on an arch
file's `#!` line: official lines unchanged, every activation computes its
formula (NumPy), survives `.keras`, converts to builtin-only TFLite with the
same logits, gets its own latency-table entries, and is searched with:
the supernet equals the network it derives."""

import numpy as np
import pytest

import autonl_tf
from autonl_tf import arch as arch_lib
from autonl_tf import latency
from autonl_tf.export import tflite
from autonl_tf.layers import MBConv
from autonl_tf.models.network import arch_of
from autonl_tf.search import copy_child_weights
from layer_testing import randomize
import np_ref
from search_testing import make_net
from search_testing import randomize as randomize_supernet

BODY = "r1_k3_s11_e1_i16_o8\nr1_k5_s22_e6_i8_o16_nonlocal0.25\nr1_k3_s11_e3_i16_o16\n"


def _arch(activation):
  return arch_lib.parse_arch(f"#! stem_stride=1 head_filters=64 activation={activation}\n"
                             + BODY)


def test_the_directive_round_trips_and_official_lines_stay_unchanged():
  for act in arch_lib.ACTIVATIONS:
    a = _arch(act)
    assert a.activation == act and arch_lib.parse_arch(arch_lib.format_arch(a)) == a
  assert "activation" not in arch_lib.format_arch(_arch("swish"))
  official = arch_lib.format_arch(arch_lib.load("autonl-s"))
  assert not official.startswith("#!") and arch_lib.load("autonl-s").activation == "swish"
  with pytest.raises(ValueError, match=r"line 1: bad token 'activation=gelu': unknown "
                                       r"activation \(expected swish, hard_swish, relu6\)"):
    arch_lib.parse_arch("#! activation=gelu\n" + BODY)


@pytest.mark.parametrize("act", arch_lib.ACTIVATIONS)
def test_each_activation_builds_saves_and_converts(act, tmp_path):
  import keras
  model = autonl_tf.build_model(_arch(act), (16, 16, 3), 5, dropout_rate=0.0)
  randomize(model)
  x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
  # The stem's activation is the formula applied to its BN output.
  probe = keras.Model(model.input, [model.get_layer("stem_bn").output,
                                    model.get_layer(f"stem_{act}").output])
  bn, out = (t.numpy() for t in probe(x, training=False))
  np.testing.assert_allclose(out, np_ref.ACTIVATIONS[act](bn.astype(np.float64)), rtol=1e-5,
                             atol=1e-5)
  assert {b.activation for b in model.layers if isinstance(b, MBConv)} == {act}
  # .keras round trip: the same logits, the same arch.
  model.save(tmp_path / "m.keras")
  restored = keras.saving.load_model(tmp_path / "m.keras")
  np.testing.assert_array_equal(model(x, training=False).numpy(),
                                restored(x, training=False).numpy())
  assert arch_of(restored) == arch_lib.Arch(arch_lib.expand_blocks(_arch(act)), stem_stride=1,
                                            head_filters=64, activation=act)
  # Builtin-only TFLite with the Keras model's logits.
  flat = tflite.convert(model, "float32")
  ops = tflite.op_counts(flat)
  assert tflite.non_builtin_ops(ops) == []
  if act == "hard_swish":
    assert "HARD_SWISH" in ops
  if act == "relu6":  # no SE in BODY: nothing left to need a sigmoid
    assert "LOGISTIC" not in ops
  images = np.random.default_rng(1).uniform(0, 255, size=(3, 16, 16, 3)).astype("float32")
  report = tflite.parity(model, tflite.TFLiteModel(content=flat), images)
  assert report["max_abs_logit_diff"] < 1e-3 * max(1.0, report["logit_range"])


def test_latency_pieces_carry_the_activation():
  keys = {act: [p.key for p in latency.arch_pieces(_arch(act), 16, 5)]
          for act in arch_lib.ACTIVATIONS}
  assert keys["swish"][0] == "stem 16x16 s1 c16"
  assert keys["relu6"][0] == "stem 16x16 s1 c16 relu6"
  assert keys["hard_swish"][1] == "mbconv 16x16 r1_k3_s11_e1_i16_o8 hard_swish"
  lightnl = [k for k in keys["relu6"] if k.startswith("lightnl")]
  assert lightnl and lightnl == [k for k in keys["swish"] if k.startswith("lightnl")]


def test_a_relu6_supernet_equals_the_network_it_derives():
  net = make_net("tiny", 16, 5, activation="relu6")
  randomize_supernet(net)
  net.reset_margins()
  arch = net.derive()
  assert arch.activation == "relu6" and "activation=relu6" in arch_lib.format_arch(arch)
  child = autonl_tf.build_model(arch, (16, 16, 3), 5, dropout_rate=0.0)
  copy_child_weights(net, child)
  x = np.random.default_rng(2).normal(size=(3, 16, 16, 3)).astype("float32")
  np.testing.assert_allclose(net(x, training=False).numpy(), child(x, training=False).numpy(),
                             rtol=1e-4, atol=1e-5)
  swish = make_net("tiny", 16, 5)
  swish.set_weights(net.get_weights())
  assert np.abs(swish(x, training=False).numpy() - net(x, training=False).numpy()).max() > 1e-3
