"""LightNL, NonLocal and MBConv parts against independent NumPy references,
and each layer through the shared `layer_testing.run_layer_test`."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

import np_ref
from autonl_tf import arch, flops
from autonl_tf.layers import (DropConnect, GroupedConv2D, LightNL, MBConv,
                              MixedDepthwiseConv2D, NonLocal, SqueezeExcite,
                              lightnl_aggregate)
from layer_testing import RNG, randomize, run_layer_test

LIGHTNL_SHAPES = [(3, 3, 128), (7, 7, 16), (5, 6, 40)]
RATIOS = [1.0, 0.5, 0.25, 0.125]


def bn_params(bn):
  return [bn.gamma.numpy(), bn.beta.numpy(), bn.moving_mean.numpy(), bn.moving_variance.numpy()]


def test_lightnl_grid_covers_both_orders():
  # The shapes below must exercise both product orders for every (r, s).
  for ratio, stride in itertools.product(RATIOS, [1, 2]):
    orders = {flops.use_order_a(*shape, ratio, stride) for shape in LIGHTNL_SHAPES}
    assert orders == {True, False}, (ratio, stride)


@pytest.mark.parametrize("ratio,stride,shape,norm",
                         list(itertools.product(RATIOS, [1, 2], LIGHTNL_SHAPES, arch.NL_NORMS)))
def test_lightnl_matches_numpy(ratio, stride, shape, norm):
  # Images of different scales, so that the second moment differs per image.
  x = (RNG.normal(size=(2,) + shape) * np.array([0.5, 3.0])[:, None, None, None]).astype("float32")
  layer = LightNL(ratio, stride, norm=norm)
  layer.build(x.shape)
  randomize(layer)
  got = layer(x, training=False).numpy()
  want = np_ref.lightnl(x.astype(np.float64), ratio, stride, layer.nl_dw.kernel.numpy(),
                        *bn_params(layer.nl_bn), norm=norm)
  assert layer.order_a == flops.use_order_a(*shape, ratio, stride)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("ratio,stride,shape",
                         list(itertools.product(RATIOS, [1, 2], LIGHTNL_SHAPES)))
def test_lightnl_orders_agree(ratio, stride, shape):
  x = tf.constant(RNG.normal(size=(2,) + shape).astype("float32"))
  a = lightnl_aggregate(x, ratio, stride, order_a=True).numpy()
  b = lightnl_aggregate(x, ratio, stride, order_a=False).numpy()
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(a, np_ref.lightnl_y(x.numpy().astype(np.float64), ratio, stride, "B"),
                             rtol=1e-4, atol=1e-5)


def _unit_lightnl(norm):
  """A LightNL whose depthwise conv and BN pass `y` through unchanged."""
  layer = LightNL(0.25, 1, norm=norm)
  layer.build((None, 6, 6, 16))
  kernel = np.zeros((3, 3, 16, 1), "float32")
  kernel[1, 1] = 1
  layer.nl_dw.kernel.assign(kernel)
  layer.nl_bn.gamma.assign(np.ones(16, "float32"))
  return layer


def test_lightnl_scale_response():
  # The root cause of the NaN validation (docs/RESULTS.md, section 6): the
  # paper's product is cubic in its input, so an image 4x the usual scale
  # gets 64x from one LightNL and ~4^9 after two in a row. The second-moment
  # product is homogeneous of degree 1.
  x = RNG.normal(size=(2, 6, 6, 16)).astype("float32")
  y = lambda norm, a: lightnl_aggregate(tf.constant(a * x), 0.25, 1, True, norm).numpy()
  np.testing.assert_allclose(y("none", 4.0), 64 * y("none", 1.0), rtol=1e-5, atol=1e-6)
  m = (x.astype(np.float64) ** 2).mean(axis=(1, 2, 3))[:, None, None, None]
  # y(4x) = 4 y(x) (m + eps) / (m + eps / 16): 4 y(x) up to eps / m.
  np.testing.assert_allclose(y("second_moment", 4.0),
                             4 * y("second_moment", 1.0) * (m + 1e-3) / (m + 1e-3 / 16), rtol=1e-5,
                             atol=1e-6)
  growth = {}
  for norm in arch.NL_NORMS:
    first, second = _unit_lightnl(norm), _unit_lightnl(norm)
    out = lambda a: np.abs(second(first(tf.constant(a * x), training=False),
                                  training=False).numpy()).max()
    growth[norm] = out(4.0) / out(1.0)
  assert growth["none"] > 1e3
  assert 3.5 < growth["second_moment"] < 4.5


@pytest.mark.parametrize("training", [False, True])
def test_fresh_lightnl_and_nonlocal_are_identity(training):
  x = RNG.normal(size=(2, 6, 5, 16)).astype("float32")
  for layer in (LightNL(0.25, 2), NonLocal()):
    np.testing.assert_array_equal(layer(x, training=training).numpy(), x)


def test_lightnl_rejects_bad_arguments():
  with pytest.raises(ValueError, match="ratio must be in"):
    LightNL(ratio=1.5)
  with pytest.raises(ValueError, match="stride"):
    LightNL(ratio=0.5, stride=0)
  with pytest.raises(ValueError, match="4-D"):
    LightNL(0.5).build((None, 8, 8))
  with pytest.raises(ValueError, match="leaves no query channel"):
    LightNL(0.125).build((None, 8, 8, 4))
  with pytest.raises(ValueError, match="unknown LightNL norm 'l2'"):
    LightNL(0.5, norm="l2")


def test_nonlocal_matches_numpy():
  x = RNG.normal(size=(2, 4, 5, 8)).astype("float32")
  layer = NonLocal()
  layer.build(x.shape)
  randomize(layer)
  k = lambda conv: conv.kernel.numpy()[0, 0]
  want = np_ref.nonlocal_block(
      x.astype(np.float64), k(layer.theta), layer.theta.bias.numpy(), k(layer.phi),
      layer.phi.bias.numpy(), k(layer.g), layer.g.bias.numpy(), k(layer.out_conv),
      *bn_params(layer.out_bn))
  np.testing.assert_allclose(layer(x, training=False).numpy(), want, rtol=1e-4, atol=1e-4)
  assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == flops.nonlocal_params(8)


@pytest.mark.parametrize("kernels,stride,channels", [((3,), 1, 8), ((3, 5, 7), 2, 11), ((5, 3), 1, 7)])
def test_mixed_depthwise_matches_numpy(kernels, stride, channels):
  x = RNG.normal(size=(2, 9, 7, channels)).astype("float32")
  layer = MixedDepthwiseConv2D(kernels, stride)
  layer.build(x.shape)
  randomize(layer)
  parts, start = [], 0
  for conv, c in zip(layer.convs, np_ref.split_channels(channels, len(kernels))):
    parts.append(np_ref.depthwise(x[..., start:start + c].astype(np.float64),
                                  conv.kernel.numpy(), stride))
    start += c
  np.testing.assert_allclose(layer(x).numpy(), np.concatenate(parts, -1), rtol=1e-4, atol=1e-4)
  # The remainder channels go to the first group, as MixNet does.
  assert layer.convs[0].kernel.shape[2] == np_ref.split_channels(channels, len(kernels))[0]


def test_grouped_conv_matches_numpy():
  x = RNG.normal(size=(1, 5, 5, 7)).astype("float32")
  layer = GroupedConv2D(9, (1, 3))
  layer.build(x.shape)
  randomize(layer)
  (c0, _), (o0, o1) = np_ref.split_channels(7, 2), np_ref.split_channels(9, 2)
  want = np.concatenate([np_ref.conv(x[..., :c0], layer.convs[0].kernel.numpy()),
                         np_ref.conv(x[..., c0:], layer.convs[1].kernel.numpy())], -1)
  assert want.shape[-1] == o0 + o1
  np.testing.assert_allclose(layer(x).numpy(), want, rtol=1e-4, atol=1e-4)


def test_squeeze_excite_matches_numpy():
  x = RNG.normal(size=(2, 4, 4, 12)).astype("float32")
  layer = SqueezeExcite(3)
  layer.build(x.shape)
  randomize(layer)
  s = x.mean(axis=(1, 2), keepdims=True)
  s = np_ref.swish(s @ layer.se_reduce.kernel.numpy()[0, 0] + layer.se_reduce.bias.numpy())
  s = s @ layer.se_expand.kernel.numpy()[0, 0] + layer.se_expand.bias.numpy()
  np.testing.assert_allclose(layer(x).numpy(), x * np_ref.sigmoid(s), rtol=1e-4, atol=1e-5)


def test_drop_connect():
  x = np.ones((400, 2, 2, 3), "float32")
  layer = DropConnect(0.25, seed=3)
  np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
  y = layer(x, training=True).numpy()
  per_example = y.reshape(400, -1)
  # Each example is wholly dropped (0) or kept and scaled by 1/(1-rate).
  values = np.unique(per_example)
  assert len(values) == 2 and values[0] == 0
  np.testing.assert_allclose(values[1], 1 / 0.75, rtol=1e-6)
  assert np.all(per_example.min(1) == per_example.max(1))
  kept = (per_example[:, 0] > 0).mean()
  assert 0.65 < kept < 0.85


@pytest.mark.parametrize("block,hw,activation", [
    ("r1_k5_s22_e6_i8_o16_se0.25_nonlocal0.25", (9, 8), "swish"),
    ("r1_k3.5_s11_e3_i8_o8_se0.5_nonlocal0.5-2", (7, 7), "swish"),
    ("r1_k3_s11_e1_i8_o8", (5, 5), "swish"),
    ("r1_k3_a1.1_p1.1_s11_e3_i8_o8_noskip", (4, 6), "swish"),
    ("r1_k5_s22_e6_i8_o16_se0.25_nonlocal0.25", (9, 8), "hard_swish"),
    ("r1_k3.5_s11_e3_i8_o8_se0.5_nonlocal0.5-2", (7, 7), "relu6"),
])
def test_mbconv_matches_numpy(block, hw, activation):
  x = RNG.normal(size=(2,) + hw + (8,)).astype("float32")
  layer = MBConv(block, activation=activation)
  layer.build(x.shape)
  randomize(layer)
  act = np_ref.ACTIVATIONS[activation]  # the SE keeps swish
  s = layer.spec
  y = x.astype(np.float64)
  if layer.expand_conv is not None:
    parts, start = [], 0
    for conv, c in zip(layer.expand_conv.convs, np_ref.split_channels(8, len(layer.expand_conv.convs))):
      parts.append(np_ref.conv(y[..., start:start + c], conv.kernel.numpy()))
      start += c
    y = act(np_ref.bn(np.concatenate(parts, -1), *bn_params(layer.expand_bn)))
  parts, start = [], 0
  for conv, c in zip(layer.dw_conv.convs, np_ref.split_channels(y.shape[-1], len(s.kernel_sizes))):
    parts.append(np_ref.depthwise(y[..., start:start + c], conv.kernel.numpy(), s.strides[0]))
    start += c
  y = act(np_ref.bn(np.concatenate(parts, -1), *bn_params(layer.dw_bn)))
  if layer.se is not None:
    se = y.mean(axis=(1, 2), keepdims=True)
    se = np_ref.swish(se @ layer.se.se_reduce.kernel.numpy()[0, 0] + layer.se.se_reduce.bias.numpy())
    y = y * np_ref.sigmoid(se @ layer.se.se_expand.kernel.numpy()[0, 0] + layer.se.se_expand.bias.numpy())
  parts, start = [], 0
  for conv, c in zip(layer.project_conv.convs, np_ref.split_channels(y.shape[-1], len(layer.project_conv.convs))):
    parts.append(np_ref.conv(y[..., start:start + c], conv.kernel.numpy()))
    start += c
  y = np_ref.bn(np.concatenate(parts, -1), *bn_params(layer.project_bn))
  if layer.nl is not None:
    y = np_ref.lightnl(y, s.nl_ratio, s.nl_stride, layer.nl.nl_dw.kernel.numpy(),
                       *bn_params(layer.nl.nl_bn))
  if s.id_skip and s.strides == (1, 1) and s.in_filters == s.out_filters:
    y = y + x
  np.testing.assert_allclose(layer(x, training=False).numpy(), y, rtol=1e-4, atol=1e-4)
  n_params = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
  assert n_params == flops.count_block(s, *hw).params


def test_mbconv_rejects_wrong_channels_and_repeats():
  with pytest.raises(ValueError, match="expects 8 input channels"):
    MBConv("r1_k3_s11_e1_i8_o8").build((None, 4, 4, 6))
  with pytest.raises(ValueError, match="expand repeats"):
    MBConv("r2_k3_s11_e1_i8_o8")


# ------------------------------------------------- the shared layer checks --

@pytest.mark.parametrize("norm", arch.NL_NORMS)
def test_lightnl_layer(tmp_path, norm):
  run_layer_test(LightNL, dict(ratio=0.125, stride=2, sync_bn=True, norm=norm, name="nl"),
                 (6, 5, 16),
                 tmp_path, expected_output_shape=(6, 5, 16), expected_trainable_weights=3,
                 expected_non_trainable_weights=2,
                 expected_trainable_params=flops.lightnl_params(16))


def test_nonlocal_layer(tmp_path):
  run_layer_test(NonLocal, dict(softmax=False), (4, 5, 8), tmp_path,
                 expected_output_shape=(4, 5, 8), expected_trainable_weights=9,
                 expected_non_trainable_weights=2,
                 expected_trainable_params=flops.nonlocal_params(8))


def test_mixed_depthwise_layer(tmp_path):
  run_layer_test(MixedDepthwiseConv2D, dict(kernel_sizes=(3, 5), strides=2), (9, 7, 11), tmp_path,
                 expected_output_shape=(5, 4, 11), expected_trainable_weights=2,
                 expected_non_trainable_weights=0,
                 expected_trainable_params=flops.mixed_depthwise((3, 5), 11, 5, 4)[1])


def test_grouped_conv_layer(tmp_path):
  run_layer_test(GroupedConv2D, dict(filters=6, kernel_sizes=(1, 3)), (5, 5, 7), tmp_path,
                 expected_output_shape=(5, 5, 6), expected_trainable_weights=2,
                 expected_non_trainable_weights=0,
                 expected_trainable_params=flops.grouped_conv((1, 3), 7, 6, 5, 5)[1])


def test_squeeze_excite_layer(tmp_path):
  run_layer_test(SqueezeExcite, dict(reduced_filters=2), (4, 4, 12), tmp_path,
                 expected_output_shape=(4, 4, 12), expected_trainable_weights=4,
                 expected_non_trainable_weights=0,
                 expected_trainable_params=12 * 2 + 2 + 2 * 12 + 12)


def test_drop_connect_layer(tmp_path):
  run_layer_test(DropConnect, dict(rate=0.1, seed=3), (2, 2, 3), tmp_path,
                 expected_output_shape=(2, 2, 3), expected_trainable_weights=0,
                 expected_non_trainable_weights=0, expected_trainable_params=0)


@pytest.mark.parametrize("block,weights,statistics,activation", [
    # expand: 2 kernels + BN; depthwise: 2 kernels + BN; SE: 2 kernels + 2
    # biases; project: kernel + BN; LightNL: depthwise kernel + BN.
    ("r1_k3.5_a1.1_s22_e6_i8_o16_se0.25_noskip_sw_nonlocal0.25-2", 18, 8, "swish"),
    ("r1_k3_s11_e1_i8_o8", 6, 4, "hard_swish"),  # depthwise kernel + BN, project kernel + BN
])
def test_mbconv_layer(block, weights, statistics, activation, tmp_path):
  layer = MBConv(block)
  run_layer_test(MBConv, dict(block=block, drop_connect_rate=0.1, sync_bn=True,
                              zero_init_residual=False, activation=activation), (9, 8, 8),
                 tmp_path,
                 expected_output_shape=layer.compute_output_shape((None, 9, 8, 8))[1:],
                 expected_trainable_weights=weights, expected_non_trainable_weights=statistics,
                 expected_trainable_params=flops.count_block(layer.spec, 9, 8).params)
