"""The model builder: parameter counts, TensorFlow graph cross-check, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

import autonl_tf
from autonl_tf import arch, flops
from autonl_tf.layers import NonLocal
from autonl_tf.models import arch_of
from layer_testing import randomize

EVERY_TOKEN_ARCH = [
    "r1_k3_s11_e1_i16_o16_sw",
    "r1_k3.5.7_a1.1_p1.1_s22_e6_i16_o24_se0.25_nonlocal0.125-2",
    "r2_k5_s11_e3_i24_o24_se0.5_nonlocal0.5",
    "r1_k3_s11_e3_i24_o24_noskip_nonlocal",
    "r1_k7_s22_e6_i24_o40_se0.25_nonlocal0.25-2",
]


def trainable_count(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("name", ["autonl-s", "autonl-l", "mobilenet-v2"])
def test_trainable_params_equal_analytic(name):
  model = autonl_tf.build_model(name)
  assert trainable_count(model) == flops.count(arch.load(name)).params
  assert model.output_shape == (None, 1000)
  assert arch_of(model).blocks == arch.expand_blocks(arch.load(name))


def _frozen_graph(model, input_size):
  fn = tf.function(lambda x: model(x, training=False))
  return convert_variables_to_constants_v2(
      fn.get_concrete_function(tf.TensorSpec([1, input_size, input_size, 3]))).graph


def _batch_matmul_macs(op):
  a, b = op.inputs[0].shape, op.inputs[1].shape
  m, k = (a[-1], a[-2]) if op.get_attr("adj_x") else (a[-2], a[-1])
  n = b[-2] if op.get_attr("adj_y") else b[-1]
  return int(np.prod(a[:-2])) * m * k * n


def profiled_macs(model, input_size):
  """MACs from TensorFlow's own graph profiler (tf.compat.v1.profiler) of the
  frozen batch-1 graph, per op type.

  The profiler gives 2 flops per multiply-add for convolutions and matmuls
  and one flop per input element for Mean (the pools). Its BatchMatMul
  statistic ignores `adj_x` (it takes the inner size from the last axis of the
  first operand), so the `k^T v` product of LightNL's order B is priced from
  the graph's shapes instead. BN, adds and activations are what the
  convention leaves out.
  """
  graph = _frozen_graph(model, input_size)
  opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  opts["output"] = "none"
  root = tf.compat.v1.profiler.profile(graph=graph, cmd="scope", options=opts)
  by_type, stack, seen = {}, [root], set()
  while stack:
    node = stack.pop()
    stack.extend(node.children)
    if node.name in ("_TFProfRoot", "") or node.name in seen:
      continue
    seen.add(node.name)
    op = graph.get_operation_by_name(node.name)
    if op.type in ("Conv2D", "DepthwiseConv2dNative", "MatMul"):
      macs = node.float_ops // 2
    elif op.type == "BatchMatMulV2":
      macs = _batch_matmul_macs(op) if op.get_attr("adj_x") else node.float_ops // 2
    elif op.type == "Mean":
      macs = node.float_ops
    else:
      continue
    by_type[op.type] = by_type.get(op.type, 0) + macs
  return sum(by_type.values()), by_type


@pytest.mark.parametrize("name,size,classes", [
    ("autonl-s", 224, 1000), ("autonl-l", 224, 1000), (EVERY_TOKEN_ARCH, 33, 10),
    # LightNL's second moment is a Mean over each image: H*W*C like a pool.
    (["#! nl_norm=second_moment"] + EVERY_TOKEN_ARCH, 33, 10)])
def test_analytic_macs_match_tensorflow_profile(name, size, classes):
  model = autonl_tf.build_model(name, input_shape=(size, size, 3), num_classes=classes)
  total, by_type = profiled_macs(model, size)
  count = flops.count(arch.load(name), size, classes)
  assert total == count.macs, by_type
  # The LightNL products really are batched matmuls in the graph.
  products = sum(min(flops.lightnl_orders(*b.out_size, b.spec.out_filters, b.spec.nl_ratio,
                                          b.spec.nl_stride)) for b in count.blocks if b.spec.has_nonlocal)
  assert by_type["BatchMatMulV2"] == products > 0


def test_cifar_size_inputs():
  model = autonl_tf.build_model("autonl-s", input_shape=(32, 32, 3), num_classes=10)
  out = model(np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype("float32"), training=False)
  assert out.shape == (3, 10) and np.all(np.isfinite(out.numpy()))


def test_builder_errors():
  with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
    autonl_tf.build_model("autonl-s", input_shape=(32, 32, 1))
  with pytest.raises(ValueError, match="static, positive height"):
    autonl_tf.build_model("autonl-s", input_shape=(None, None, 3))
  with pytest.raises(ValueError, match="num_classes"):
    autonl_tf.build_model("autonl-s", input_shape=(32, 32, 3), num_classes=0)
  with pytest.raises(ValueError, match="neither a preset"):
    autonl_tf.build_model("autonl-xxl")
  # Architecture limits, before any layer is built (issue 18, point 3).
  from autonl_tf.arch import ArchLimitError, ArchLimits
  with pytest.raises(ArchLimitError, match="'r10000': 10,000 repeats"):
    autonl_tf.build_model(["r10000_k3_s11_e1_i8_o8"], input_shape=(8, 8, 3))
  with pytest.raises(ArchLimitError, match="at 32x32 with 10 classes has 3,121,160 parameters"):
    autonl_tf.build_model("autonl-s", (32, 32, 3), 10, arch_limits=ArchLimits(params=1e6))


def test_drop_connect_rates_grow_with_depth():
  model = autonl_tf.build_model("autonl-s", input_shape=(32, 32, 3), drop_connect_rate=0.2)
  rates = [l.drop_connect_rate for l in model.layers if l.name.startswith("block_")]
  assert rates[0] == 0 and rates == sorted(rates) and rates[-1] == pytest.approx(0.2 * 17 / 18)


def test_keras_file_round_trip(tmp_path):
  inputs = keras.Input((20, 20, 3))
  base = autonl_tf.build_model(EVERY_TOKEN_ARCH, input_shape=(20, 20, 3), num_classes=7,
                               drop_connect_rate=0.1)
  x = base(inputs)
  x = keras.layers.Reshape((7, 1, 1))(x)
  x = keras.layers.Conv2D(4, 1)(x)
  outputs = NonLocal(name="nonlocal")(x)
  model = keras.Model(inputs, outputs)
  randomize(model)
  path = tmp_path / "model.keras"
  model.save(path)
  restored = keras.saving.load_model(path)
  images = np.random.default_rng(1).normal(size=(2, 20, 20, 3)).astype("float32")
  np.testing.assert_array_equal(model(images, training=False).numpy(),
                                restored(images, training=False).numpy())
  assert arch_of(restored.get_layer(base.name)).blocks == arch.expand_blocks(arch.load(EVERY_TOKEN_ARCH))
