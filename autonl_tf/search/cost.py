"""The search's cost: MACs, or the latency predicted by a LiteRT latency
table, as a differentiable function of the gates, and how the cost enters
the loss.

Every term is built from the `autonl_tf.flops` formulas, so for any hard
gate setting the supernet's MACs equal `flops.count` of the derived network
exactly. The MACs are multilinear in the raw gates (`SuperMBConv.raw_gates`),
each gate once in every product, so a decision's straight-through gradient
is its MAC delta times its sigmoid'.

How the cost meets the cross-entropy (`SuperNet.train_step`): each
architecture variable steps on `g_ce / rms(g_ce) + price * g_cost / rms(g_cost)`,
where `g_cost` is the gradient of `cost_term` (log MACs, or MACs / target:
after the normalisation both give every decision its MAC delta times its
sigmoid', relative to the others) and `price` is
  * `log`:    lambda, fixed (Single-Path NAS / AutoNL, arXiv 1904.02877,
    2004.01961: lambda * log MACs);
  * `target`: lambda + penalty * (MACs / target - 1), with lambda set by
    `dual_step`: it rises while the network is above
    `target * (1 + tolerance)`, falls (below 0 it pays for MACs) while it is
    below `target * (1 - tolerance)`, and holds inside the band, so the
    price settles once the architecture is within the budget instead of
    circling it.
A decision flips off when its MAC delta, at that price, outweighs what the
cross-entropy loses without it.

The cost model (`choices.COST_MODELS`) says what is priced: `macs` (the MACs above),
or `latency`, the milliseconds a `latency.LatencyTable` predicts
(`block_latency`, from the entries of `search.pieces.space_block_pieces`),
built the same way: multilinear in the raw gates, so a decision's
straight-through gradient is its latency delta times its sigmoid', and for
any hard gate setting the cost is the table's prediction for the derived
network. Everything above holds with "MACs" read as "ms".
"""

import tensorflow as tf

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf.search.pieces import BlockOption, NLOption


def fixed_macs(space, input_size, num_classes, last_hw):
  """Stem + fixed first block + head: what no decision changes."""
  macs, (h, w) = flops.stem_macs(input_size, input_size, space.stem_stride, space.stem_filters)
  if space.first_block:
    macs += flops.count_block(arch_lib.parse_block(space.first_block), h, w,
                              nl_norm=space.nl_norm).macs
  return macs + flops.head_macs(*last_hw, space.stages[-1].channels, space.head_filters, num_classes)


def block_macs(block, g):
  """MACs of a `SuperMBConv` as a function of its raw gates `g`:
  `e_small * (convs(E) + dw(E, k5, k7) + SE(E) + nl * LightNL(r, s))` with `E`
  the expanded channels."""
  (h, w), (ho, wo) = block.hw, block.out_hw
  e = block.expanded_small + (block.expanded - block.expanded_small) * g["e_large"]
  total = flops.conv_macs(1, block.in_filters, e, h, w)
  dw = flops.depthwise_macs(3, e, ho, wo)
  if "k5" in g:
    ring = flops.depthwise_macs(5, e, ho, wo) - dw
    if "k7" in g:
      ring = ring + g["k7"] * (flops.depthwise_macs(7, e, ho, wo) - flops.depthwise_macs(5, e, ho, wo))
    dw = dw + g["k5"] * ring
  total = total + dw
  if block.se is not None:
    total = total + flops.se_macs(ho, wo, e, block.se.reduced_filters)
  total = total + flops.conv_macs(1, e, block.out_filters, ho, wo)
  return g["e_small"] * (total + g["nl"] * _lightnl_macs(block, g))


def _ratio_weights(block, g):
  """One-hot over the LightNL ratio candidates from the nested steps."""
  chain = block.ratio_chain(g)
  cum = [tf.constant(1.0)] + [chain[f"r{i}"] for i in range(1, len(block.nl_ratios))] + [0.0]
  return [cum[i] - cum[i + 1] for i in range(len(block.nl_ratios))]


def _lightnl_mix(block, g, value):
  """sum over LightNL's (ratio, stride) candidates of their one-hot weights
  from the gates times `value(ratio, stride)`."""
  strides = ({1: g["s1"], 2: 1 - g["s1"]} if len(block.nl_strides) == 2
             else {block.nl_strides[0]: 1.0})
  total = 0.0
  for r, pr in zip(block.nl_ratios, _ratio_weights(block, g)):
    for s, ps in strides.items():
      total = total + pr * ps * value(r, s)
  return total


def _lightnl_macs(block, g):
  ho, wo = block.out_hw
  return _lightnl_mix(block, g, lambda r, s: float(flops.lightnl_macs(ho, wo, block.out_filters,
                                                                      r, s, block.nl_norm)))


def kernel_weights(g):
  """{kernel: weight} one-hot over the depthwise kernels from the nested
  raw gates (k7 counts only with k5 on, as in `block_macs`)."""
  if "k5" not in g:
    return {3: 1.0}
  if "k7" not in g:
    return {3: 1.0 - g["k5"], 5: g["k5"]}
  return {3: 1.0 - g["k5"], 5: g["k5"] * (1.0 - g["k7"]), 7: g["k5"] * g["k7"]}


def block_latency(block, g, ms):
  """Latency of a `SuperMBConv` as a function of its raw gates `g`, from its
  latency-table entries `ms` ({option: ms without the invoke overhead},
  options the `BlockOption`s and `NLOption`s of
  `search.pieces.space_block_pieces`): `e_small * (sum_k,e w_k w_e T(k, e)
  + nl * sum_r,s w_r w_s T_nl(r, s))`, multilinear in the gates like `block_macs`, so that for
  hard gates it is the table's entries of the derived block."""
  small, large = block.expand_ratios
  expand = {small: 1.0 - g["e_large"], large: g["e_large"]}
  body = 0.0
  for k, wk in kernel_weights(g).items():
    for e, we in expand.items():
      body = body + wk * we * ms[BlockOption(k, e)]
  nl = _lightnl_mix(block, g, lambda r, s: ms[NLOption(r, s)])
  return g["e_small"] * (body + g["nl"] * nl)


#: Running-mean factor of the forces' mean squares (per step).
FORCE_AVERAGING = 0.99


def cost_term(mode, macs, target=None):
  """The function of the MACs whose gradient is the cost's force."""
  if mode == "log":
    return tf.math.log(macs)
  return macs / target


def price(mode, lam, macs, target=None, penalty=0.0):
  """The weight of the cost's (normalised) force against the cross-entropy's."""
  if mode == "log":
    return lam
  return lam + penalty * (macs / target - 1.0)


def dual_step(macs, target, dual_lr, tolerance):
  """lambda's change after a step of `target` mode: `dual_lr` times the
  relative excess beyond the `tolerance` band (0 inside it)."""
  excess = macs / target - 1.0
  outside = tf.nn.relu(excess - tolerance) - tf.nn.relu(-excess - tolerance)
  return dual_lr * outside
