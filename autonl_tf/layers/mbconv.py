"""MBConv (MnasNet's inverted residual block) with optional squeeze-excitation,
mixed kernels, drop-connect and a LightNL after the projection: the blocks of
the AutoNL networks and of their search space (arXiv 2004.01961, section 4,
"Neural Architecture Search for LightNL"), written as the official code's
arch strings (see `autonl_tf.arch`)."""

import keras

from autonl_tf import constants
from autonl_tf import flops
from autonl_tf.arch import codec
from autonl_tf.layers import activations
from autonl_tf.layers import batch_norm
from autonl_tf.layers.drop_connect import DropConnect
from autonl_tf.layers.grouped_conv import GroupedConv2D
from autonl_tf.layers.lightnl import LightNL
from autonl_tf.layers.mixed_depthwise import MixedDepthwiseConv2D
from autonl_tf.layers.squeeze_excite import SqueezeExcite
from autonl_tf.saving import KERAS_PACKAGE


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class MBConv(keras.layers.Layer):
  """MnasNet inverted-residual block with an optional LightNL.

  [1x1 expand conv + BN + act, when expand ratio != 1] -> depthwise kxk
  (stride s, mixed kernels for a `k3.5.7` list) + BN + act -> [SE] -> 1x1
  project conv + BN -> [LightNL(r, s)] -> [drop-connect + residual, when
  stride 1, in == out channels and not `noskip`].

  Args:
    block: the block as an arch string with `r1` (see `autonl_tf.arch`), e.g.
      `r1_k5_s22_e6_i40_o80_se0.25_nonlocal0.25-2`.
    activation: `act` above: `swish` (the paper's), `hard_swish` or `relu6`
      (`arch.ACTIVATIONS`; the SE keeps its own swish and sigmoid).
    nl_norm: the LightNL's product, `none` (the paper's) or `second_moment`
      (`arch.NL_NORMS`, see `LightNL`).
    drop_connect_rate: drop-connect probability of the residual branch.
    bn_momentum: batch-norm momentum.
    bn_epsilon: batch-norm epsilon.
    sync_bn: batch statistics over all replicas of a tf.distribute strategy.
    zero_init_residual: start the projection BN's gamma at 0 in blocks with a
      residual connection, so that a fresh block is the identity (Goyal et
      al. 2017, "Accurate, large minibatch SGD", section 5.1; timm's
      `zero_init_last`). MnasNet starts it at 1; then the gradient grows
      through every block of a fresh network (AutoNL-S at 32px, 10 classes:
      the stem's gradient is 47x the classifier's with MnasNet's
      initialisation, 0.9x with this and `constants.dense_initializer`).
    **kwargs: base layer arguments.

  Call arguments:
    inputs: `[N, H, W, in_filters]` tensor.
    training: BN / drop-connect mode.
  """

  def __init__(self, block, drop_connect_rate=0.0, bn_momentum=constants.BN_MOMENTUM,
               bn_epsilon=constants.BN_EPSILON, sync_bn=False, zero_init_residual=True,
               activation="swish", nl_norm="none", **kwargs):
    super().__init__(**kwargs)
    spec = codec.parse_block(block) if isinstance(block, str) else block
    if spec.repeats != 1:
      raise ValueError(f"MBConv builds one block; expand repeats first (got r{spec.repeats})")
    self.spec = spec
    self.block = codec.format_block(spec)
    self.drop_connect_rate = float(drop_connect_rate)
    self.bn_momentum = bn_momentum
    self.bn_epsilon = bn_epsilon
    self.sync_bn = bool(sync_bn)
    self.zero_init_residual = bool(zero_init_residual)
    self.activation = activations.check(activation)
    self._act = activations.get(activation)
    self.nl_norm = codec.check_nl_norm(nl_norm)

  @property
  def has_residual(self):
    s = self.spec
    return s.id_skip and s.strides == (1, 1) and s.in_filters == s.out_filters

  def build(self, input_shape):
    s = self.spec
    if input_shape[-1] != s.in_filters:
      raise ValueError(f"block '{self.block}' expects {s.in_filters} input channels, "
                       f"got shape {tuple(input_shape)}")
    bn = lambda name, gamma="ones": batch_norm.paper_batch_norm(
        name, gamma, self.bn_momentum, self.bn_epsilon, self.sync_bn)
    expanded = s.in_filters * s.expand_ratio
    shape = tuple(input_shape)
    exp_shape = shape[:-1] + (expanded,)
    self.expand_conv = self.expand_bn = None
    if s.expand_ratio != 1:
      self.expand_conv = GroupedConv2D(expanded, s.expand_kernel_sizes, name="expand_conv")
      self.expand_bn = bn("expand_bn")
      self.expand_conv.build(shape)
      self.expand_bn.build(exp_shape)
    self.dw_conv = MixedDepthwiseConv2D(s.kernel_sizes, s.strides, name="dw_conv")
    self.dw_conv.build(exp_shape)
    dw_shape = self.dw_conv.compute_output_shape(exp_shape)
    self.dw_bn = bn("dw_bn")
    self.dw_bn.build(dw_shape)
    self.se = None
    if s.has_se:
      self.se = SqueezeExcite(flops.se_reduced_filters(s.in_filters, s.se_ratio), name="se")
      self.se.build(dw_shape)
    self.project_conv = GroupedConv2D(s.out_filters, s.project_kernel_sizes, name="project_conv")
    self.project_conv.build(dw_shape)
    out_shape = dw_shape[:-1] + (s.out_filters,)
    zero = self.zero_init_residual and self.has_residual
    self.project_bn = bn("project_bn", "zeros" if zero else "ones")
    self.project_bn.build(out_shape)
    self.nl = None
    if s.has_nonlocal:
      self.nl = LightNL(s.nl_ratio, s.nl_stride, self.bn_momentum, self.bn_epsilon,
                        self.sync_bn, norm=self.nl_norm, name="nl")
      self.nl.build(out_shape)
    self.drop = None
    if self.has_residual and self.drop_connect_rate > 0:
      self.drop = DropConnect(self.drop_connect_rate, name="drop")

  def call(self, inputs, training=None):
    x = inputs
    if self.expand_conv is not None:
      x = self._act(self.expand_bn(self.expand_conv(x), training=training))
    x = self._act(self.dw_bn(self.dw_conv(x), training=training))
    if self.se is not None:
      x = self.se(x)
    x = self.project_bn(self.project_conv(x), training=training)
    if self.nl is not None:
      x = self.nl(x, training=training)
    if self.has_residual:
      if self.drop is not None:
        x = self.drop(x, training=training)
      x = x + inputs
    return x

  def compute_output_shape(self, input_shape):
    n, h, w, _ = input_shape
    sh, sw = self.spec.strides
    out = lambda size, st: None if size is None else flops.same_out_size(size, st)
    return (n, out(h, sh), out(w, sw), self.spec.out_filters)

  def get_config(self):
    config = super().get_config()
    config.update(block=self.block, drop_connect_rate=self.drop_connect_rate,
                  bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon, sync_bn=self.sync_bn,
                  zero_init_residual=self.zero_init_residual, activation=self.activation,
                  nl_norm=self.nl_norm)
    return config
