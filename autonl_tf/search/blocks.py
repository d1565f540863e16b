"""`SuperMBConv`: the searchable block of the single-path supernet, an
MBConv with learnable kernel / expand / skip masks followed by a searchable
LightNL (arXiv 2004.01961, section 4, "Neural Architecture Search for
Lightweight Non-Local Networks"; Single-Path NAS, arXiv 1904.02877).

Every decision is a hard 0/1 gate in the forward pass with a straight-through
sigmoid gradient (`gates.indicator`):

* kernel: one kmax x kmax depthwise superkernel; the 5x5 ring is kept when
  its RMS exceeds threshold `t_k5`, the 7x7 ring (only with the 5x5 one) when
  its RMS exceeds `t_k7`;
* expand ratio / skip: nested channel masks on the expanded channels; the
  first `e_small * C` channels (gate `e_small`, only for skippable blocks: off
  means the whole block is skipped) and the rest (`e_large`), each kept when
  the RMS of their masked depthwise weights exceeds a threshold;
* LightNL after the block: kept when the RMS of its depthwise kernel exceeds
  `t_nl`; its channel ratio is a nested prefix mask on query/key channels with
  one learnable logit per step; its stride (1 or 2) a learnable logit.

A threshold decision's margin is `log(RMS) - t` (the gate is on when it is
positive): in log units every decision, whatever its weights' scale, sits the
same distance from flipping for the same margin, and `reset_margins` starts
them all on the same line. RMS (the L2 norm divided by sqrt(#elements))
rather than the plain norm of Single-Path NAS makes the value independent of
the number of weights.

Every kernel those values read is followed by a batch norm (the superkernel
by `dw_bn`, per channel; LightNL's depthwise kernel by `nl_bn`), so in
training the loss does not depend on their scale: the expansion, skip and
LightNL values carry nothing the loss sees, and the kernel rings' only
through the ring's share of its channel's kernel. Their common scale moves
only by what moves a scale-free weight's norm, weight decay shrinking it and
gradient noise growing it, and every margin moves with it by the same log
factor, whatever the decision is worth.
`decision_value='logit'` takes the values out: each threshold decision is
then a learnable logit, `0 - t`, moved by its straight-through gradient
alone, like the ratio and stride decisions.

`k^T v` is computed once per LightNL stride at the largest ratio; smaller
ratios only mask query channels, which equals masking rows of `k^T v`.
The block's MACs as a function of its gates are in `search.cost`, its
`BlockSpec` in `search.derive`.
"""

import zlib

import keras
import numpy as np
import tensorflow as tf

from autonl_tf import constants
from autonl_tf import flops
from autonl_tf.arch import codec
from autonl_tf.layers import SqueezeExcite
from autonl_tf.layers import activations
from autonl_tf.layers import batch_norm
from autonl_tf.layers import depthwise
from autonl_tf.layers.lightnl import second_moment_scale
from autonl_tf.saving import KERAS_PACKAGE
from autonl_tf.search import gates as gates_lib
from autonl_tf.search import choices

def _ring_masks(kmax):
  """Constant [kmax, kmax, 1, 1] masks: the 3x3 centre and the 5/7 rings."""
  masks = {}
  prev = np.zeros((kmax, kmax), np.float32)
  for k in (3, 5, 7):
    if k > kmax:
      break
    m = np.zeros((kmax, kmax), np.float32)
    o = (kmax - k) // 2
    m[o:o + k, o:o + k] = 1
    masks[k] = (m - prev)[:, :, None, None]
    prev = m
  return masks


def _log_rms(x, area=None):
  """log of the root mean square of `x`, the value a threshold gate compares;
  with `area`, of a `[k, k, C, 1]` kernel over `area` taps per channel only
  (the others are masked to zero)."""
  if area is None:
    mean = tf.reduce_mean(tf.square(x))
  else:
    mean = tf.reduce_sum(tf.square(x)) / (area * x.shape[2])
  return 0.5 * tf.math.log(mean + 1e-24)


THRESHOLDS = ("k5", "k7", "e_small", "e_large", "nl")  # the rest are logits compared with 0


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class SuperMBConv(keras.layers.Layer):
  """Searchable MBConv block followed by a searchable LightNL.

  Args:
    in_filters / out_filters: channels.
    stride: depthwise stride.
    se_ratio: squeeze-excitation ratio (of `in_filters`); 0 = none.
    skippable: whether the block may be skipped (stride 1, in == out, not
      the first of its stage).
    kernel_sizes: kernel choices, (3,), (3, 5) or (3, 5, 7).
    expand_ratios: (small, large) expand ratios.
    nl_ratios: LightNL channel ratios, ascending.
    nl_strides: LightNL strides, (1,), (2,) or (1, 2).
    bn_momentum / bn_epsilon: batch norm.
    sync_bn: batch statistics over all replicas.
    activation: after the expand and depthwise convs (`arch.ACTIVATIONS`).
    nl_norm: LightNL's product (`arch.NL_NORMS`, see `layers.LightNL`).
    decision_value: what a threshold decision compares with its threshold
      (`choices.DECISION_VALUES`): `weight_norm`, the log RMS of its weights, or
      `logit`, 0 (see the module docstring).
    **kwargs: base layer arguments.

  Attributes:
    forced: dict decision -> 0/1 overriding that gate (tests, derivation
      checks); empty for a normal search.
  """

  def __init__(self, in_filters, out_filters, stride=1, se_ratio=0.0, skippable=False,
               kernel_sizes=(3, 5, 7), expand_ratios=(3, 6), nl_ratios=(0.125, 0.25, 0.5),
               nl_strides=(1, 2), bn_momentum=constants.BN_MOMENTUM,
               bn_epsilon=constants.BN_EPSILON, sync_bn=False, activation="swish",
               nl_norm="none", decision_value="weight_norm", **kwargs):
    super().__init__(**kwargs)
    self.decision_value = choices.check("decision_value", decision_value)
    self.sync_bn = bool(sync_bn)
    self.activation = activations.check(activation)
    self._act = activations.get(activation)
    self.nl_norm = codec.check_nl_norm(nl_norm)
    self.in_filters = int(in_filters)
    self.out_filters = int(out_filters)
    self.stride = int(stride)
    self.se_ratio = float(se_ratio)
    self.skippable = bool(skippable)
    self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
    self.expand_ratios = tuple(int(e) for e in expand_ratios)
    self.nl_ratios = tuple(float(r) for r in nl_ratios)
    self.nl_strides = tuple(int(s) for s in nl_strides)
    self.bn_momentum = bn_momentum
    self.bn_epsilon = bn_epsilon
    self.forced = {}
    self.dropout_rate = None  # a scalar variable set by the SuperNet (warm-up gate dropout)

  # ---------------------------------------------------------------- build --
  @property
  def residual(self):
    return self.stride == 1 and self.in_filters == self.out_filters

  @property
  def decisions(self):
    names = []
    if 5 in self.kernel_sizes:
      names.append("k5")
    if 7 in self.kernel_sizes:
      names.append("k7")
    if self.skippable:
      names.append("e_small")
    names += ["e_large", "nl"]
    names += [f"r{i}" for i in range(1, len(self.nl_ratios))]
    if len(self.nl_strides) == 2:
      names.append("s1")
    return names

  def build(self, input_shape):
    n, h, w, c = input_shape
    if c != self.in_filters:
      raise ValueError(f"{self.name} expects {self.in_filters} channels, got {c}")
    self.hw = (int(h), int(w))
    self.out_hw = (flops.same_out_size(int(h), self.stride), flops.same_out_size(int(w), self.stride))
    e_small, e_large = self.expand_ratios
    self.expanded = self.in_filters * e_large
    self.expanded_small = self.in_filters * e_small
    kmax = max(self.kernel_sizes)
    init = constants.conv_initializer()
    bn = lambda name, gamma="ones": batch_norm.paper_batch_norm(
        name, gamma, self.bn_momentum, self.bn_epsilon, self.sync_bn)
    exp_shape = (n, h, w, self.expanded)
    out_exp_shape = (n,) + self.out_hw + (self.expanded,)
    out_shape = (n,) + self.out_hw + (self.out_filters,)
    self.expand_conv = keras.layers.Conv2D(self.expanded, 1, use_bias=False, kernel_initializer=init,
                                           name="expand_conv")
    self.expand_conv.build(input_shape)
    self.expand_bn = bn("expand_bn")
    self.expand_bn.build(exp_shape)
    self.dw_kernel = self.add_weight(name="dw_kernel", shape=(kmax, kmax, self.expanded, 1),
                                     initializer=keras.initializers.VarianceScaling(
                                         2.0, "fan_out", "untruncated_normal"))
    self.dw_bn = bn("dw_bn")
    self.dw_bn.build(out_exp_shape)
    self.se = None
    if self.se_ratio > 0:
      self.se = SqueezeExcite(flops.se_reduced_filters(self.in_filters, self.se_ratio), name="se")
      self.se.build(out_exp_shape)
    self.project_conv = keras.layers.Conv2D(self.out_filters, 1, use_bias=False,
                                            kernel_initializer=init, name="project_conv")
    self.project_conv.build(out_exp_shape)
    # The residual branch's BN gamma starts at 1, not at 0 as in the fixed
    # network (`MBConv(zero_init_residual=True)`): a decision's cross-entropy
    # force is its option's effect on the output, and in a branch scaled by 0
    # nothing has any.
    self.project_bn = bn("project_bn")
    self.project_bn.build(out_shape)
    self.nl_dw = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False,
                                              depthwise_initializer=init, name="nl_dw")
    self.nl_dw.build(out_shape)
    # LightNL's starts at 0 (as in `LightNL`) and grows in warm-up where
    # LightNL lowers the loss: its worth at the search's start is what it
    # learned to do. (Started at 1, its unit-scale output, needed or not, made
    # removing it cost the loss: on a task it cannot help with, its margin
    # rose from 0.1 to 1.3 in the first search epoch.)
    self.nl_bn = bn("nl_bn", "zeros")
    self.nl_bn.build(out_shape)
    self.rings = _ring_masks(kmax)  # NumPy constants (tensors made at build time would leak graphs)
    arch = lambda name, value: self.add_weight(
        name=name, shape=(), initializer=keras.initializers.Constant(value), trainable=True)
    # Every decision on (the largest network): thresholds far below any
    # log RMS, logits above 0; `reset_margins` sets the real starting line.
    self.arch_vars = {d: arch(f"arch_{d}", -30.0 if d in THRESHOLDS else 0.01)
                      for d in self.decisions}
    # A seed from the name that is the same in every process (Python's
    # hash() of a str is salted per process), so that warm-up gate dropout
    # follows the global seed.
    self.seed_generator = keras.random.SeedGenerator(zlib.crc32(self.name.encode()) % (2 ** 31))

  @property
  def decayed_weights(self):
    """Kernels of this layer's own that weight decay applies to (the
    superkernel; its sub-layers' kernels are found by their type)."""
    return [self.dw_kernel]

  # ---------------------------------------------------------------- gates --
  def _gate(self, name, value, training, threshold=None, margins=None):
    """`1[value > threshold]` (the decision's threshold by default), with
    forcing and warm-up dropout; 1 for decisions this block does not search.
    Records `value - threshold` in `margins` when given."""
    if name not in self.arch_vars:
      return tf.constant(1.0)
    # Gates, masks and MACs are float32 even under a mixed-precision policy
    # (inside `call` Keras hands out 16-bit copies of the variables).
    # The decision moves by its threshold / logit alone: no gradient through
    # the value into the weights, which learn from the forward pass only (an
    # adaptive weight optimizer would otherwise carry a wanted option's value
    # away from the threshold faster than the threshold can follow).
    value = tf.cast(value, tf.float32)
    if name in THRESHOLDS:  # (a LightNL logit is its own value: it keeps its gradient)
      value = tf.stop_gradient(value)
    threshold = self.arch_vars[name] if threshold is None else threshold
    if margins is not None:
      margins[name] = value - tf.cast(threshold, tf.float32)
    g = gates_lib.indicator(value, tf.cast(threshold, tf.float32))
    if name in self.forced:
      return gates_lib.force(g, self.forced[name])
    if training and self.dropout_rate is not None:
      # Warm-up: drop optional choices at random so their sub-paths train too.
      keep = tf.cast(keras.random.uniform((), dtype="float32", seed=self.seed_generator)
                     >= tf.cast(self.dropout_rate, tf.float32), g.dtype)
      g = g * keep
    return g

  def _kernel(self, g, dw):
    """The effective depthwise kernel: the 3x3 centre, plus the 5x5 ring when
    `k5`, plus the 7x7 ring when `k5` and `k7` (raw gates: each once)."""
    k = dw * self.rings[3]
    if 5 in self.rings:
      ring = dw * self.rings[5]
      if 7 in self.rings:
        ring = ring + g["k7"] * dw * self.rings[7]
      k = k + g["k5"] * ring
    return k

  def raw_gates(self, training=False, margins=None):
    """Each decision's own 0/1 indicator, not multiplied by the decisions it
    is nested in (1.0 for decisions not searched), plus `kernel`.

    The forward pass and the MACs are multilinear in these, with each gate
    appearing once in every product, so a decision's straight-through
    gradient is exactly its effect (on the output or the MACs) times its
    sigmoid': `gates()` gives the nested values that describe the
    architecture. `margins`, a dict, receives each searched decision's
    `value - threshold` (the logit itself for ratio / stride)."""
    g = {}
    gate = lambda name, value, threshold=None: self._gate(name, value, training, threshold,
                                                          margins)
    dw = tf.cast(self.dw_kernel, tf.float32)
    norm = self.decision_value == "weight_norm"
    zero = tf.constant(0.0)
    if 5 in self.rings:
      g["k5"] = gate("k5", _log_rms(dw * self.rings[5]) if norm else zero)
    if 7 in self.rings:
      g["k7"] = gate("k7", _log_rms(dw * self.rings[7]) if norm else zero)
    kernel = self._kernel(g, dw)
    if norm:
      # The expansion gates weigh the kernel as chosen, but a kernel decision
      # reaches the cost and the output through its own gate only (its straight-
      # through gradient must not also flow in through the expansion gates' RMS).
      # Their RMS is over the chosen kernel's own taps (`area` of them), so that
      # a kernel decision does not move the expansion margins.
      fixed = {k: tf.stop_gradient(v) for k, v in g.items()}
      chosen = self._kernel(fixed, dw)
      area = self._kernel(fixed, tf.ones_like(dw[:, :, :1]))
      area = tf.reduce_sum(area)
      small = self.expanded_small
      g["e_small"] = gate("e_small", _log_rms(chosen[:, :, :small], area))
      g["e_large"] = gate("e_large", _log_rms(chosen[:, :, small:], area))
      g["nl"] = gate("nl", _log_rms(tf.cast(self.nl_dw.kernel, tf.float32)))
    else:
      for d in ("e_small", "e_large", "nl"):
        g[d] = gate(d, zero)
    # The LightNL masks: `1[a > 0]` of a learnable logit `a`.
    for i in range(1, len(self.nl_ratios)):
      g[f"r{i}"] = gate(f"r{i}", self.arch_vars[f"r{i}"], 0.0)
    if len(self.nl_strides) == 2:
      g["s1"] = gate("s1", self.arch_vars["s1"], 0.0)
    g["kernel"] = kernel
    return g

  def margins(self):
    """{decision: value - threshold} of every searched decision (> 0: on)."""
    out = {}
    self.raw_gates(False, out)
    return {k: float(v) for k, v in out.items()}

  def reset_margins(self, margin):
    """Puts every decision `margin` above its flipping point (on): each
    threshold at `log RMS - margin`, each LightNL logit at `margin`, so that
    no decision starts nearer to flipping than another."""
    for _ in range(2):  # the expansion gates' values depend on the kernel decisions
      now = self.margins()
      for d, var in self.arch_vars.items():
        var.assign(float(var.numpy()) + now[d] - margin if d in THRESHOLDS else margin)

  def gates(self, training=False):
    """The hard gates of every decision as the architecture has them: `k7`
    only with `k5`, `e_large` and `nl` only in a kept block, ratio step `r_i`
    only with the steps before it (1.0 for decisions not searched)."""
    g = dict(self.raw_gates(training))
    if "k7" in g:
      g["k7"] = g["k5"] * g["k7"]
    g["e_large"] = g["e_small"] * g["e_large"]
    g["nl"] = g["e_small"] * g["nl"]
    g.update(self.ratio_chain(g))
    return g

  def ratio_chain(self, g):
    """{r_i: r_1 * ... * r_i}: ratio candidate i is used when every step up
    to it is on (nested prefixes)."""
    chain, prev = {}, tf.constant(1.0)
    for i in range(1, len(self.nl_ratios)):
      prev = prev * g[f"r{i}"]
      chain[f"r{i}"] = prev
    return chain

  # -------------------------------------------------------------- forward --
  def _channel_mask(self, g):
    small, large = self.expanded_small, self.expanded - self.expanded_small
    dt = g["e_large"].dtype
    return tf.concat([tf.ones([small], dt), tf.ones([large], dt) * g["e_large"]], 0)

  def _ratio_mask(self, chain, channels, dtype):
    sizes = [int(r * channels) for r in self.nl_ratios]
    parts = [tf.ones([sizes[0]], dtype)]
    for i in range(1, len(sizes)):
      parts.append(tf.ones([sizes[i] - sizes[i - 1]], dtype) * chain[f"r{i}"])
    return tf.concat(parts, 0)

  def call(self, inputs, training=None):
    g = self.raw_gates(training)
    cast = lambda d: {k: tf.cast(v, inputs.dtype) for k, v in d.items()}  # the compute dtype
    chain = cast(self.ratio_chain(g))
    g = cast(g)
    # The expansion mask once, after the depthwise conv's BN and activation:
    # masked before the depthwise conv too, an off `e_large` would see its
    # channels' output as act(BN(0)), a per-channel constant, and its
    # straight-through gradient would not measure what turning them on does.
    x = self._act(self.expand_bn(self.expand_conv(inputs), training=training))
    x = depthwise.depthwise_conv2d(x, g["kernel"], self.stride, training)
    x = self._act(self.dw_bn(x, training=training)) * self._channel_mask(g)
    if self.se is not None:
      x = self.se(x)
    z = self.project_bn(self.project_conv(x), training=training)
    branch = z + g["nl"] * self._lightnl(z, g, chain, training)
    if self.residual:  # e_small is 1 (not searched) in blocks that cannot be skipped
      return inputs + g["e_small"] * branch
    return branch

  def _lightnl(self, z, g, chain, training):
    _, h, w, c = z.shape
    rmax = int(self.nl_ratios[-1] * c)
    q = tf.reshape(z[..., :rmax] * self._ratio_mask(chain, c, z.dtype) *
                   tf.cast(1.0 / (h * w), z.dtype), [-1, h * w, rmax])
    if self.nl_norm == "second_moment":
      q = q * second_moment_scale(z)
    outs = {}
    for s in self.nl_strides:
      zs = z[:, ::s, ::s, :] if s > 1 else z
      hs, ws = zs.shape[1], zs.shape[2]
      k = tf.reshape(zs[..., :rmax], [-1, hs * ws, rmax])
      v = tf.reshape(zs, [-1, hs * ws, c])
      outs[s] = tf.matmul(q, tf.matmul(k, v, transpose_a=True))
    y = g["s1"] * outs[1] + (1 - g["s1"]) * outs[2] if len(self.nl_strides) == 2 else \
        outs[self.nl_strides[0]]
    return self.nl_bn(self.nl_dw(tf.reshape(y, [-1, h, w, c])), training=training)

  def get_config(self):
    config = super().get_config()
    config.update(in_filters=self.in_filters, out_filters=self.out_filters, stride=self.stride,
                  se_ratio=self.se_ratio, skippable=self.skippable,
                  kernel_sizes=list(self.kernel_sizes), expand_ratios=list(self.expand_ratios),
                  nl_ratios=list(self.nl_ratios), nl_strides=list(self.nl_strides),
                  bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon, sync_bn=self.sync_bn,
                  activation=self.activation, nl_norm=self.nl_norm,
                  decision_value=self.decision_value)
    return config
