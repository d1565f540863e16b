"""Exact analytic MAC and parameter counts of the networks of arXiv 2004.01961
(the MACs of its tables, counted as the official code's profiler counts them).

Convention of the official AutoNL profiler: conv `kh*kw*cin*cout*Hout*Wout`,
depthwise `kh*kw*C*Hout*Wout`, global pool `H*W*C`, dense `in*out`, SE = its
pool plus its two 1x1 convs on a 1x1 map, LightNL `min(A, B) + 9*H*W*C`
(arXiv 2004.01961, section 3); residual adds, BN and activations cost 0.

Parameters are the trainable ones: conv and dense kernels, biases (SE convs and
the classifier have them) and BN gamma/beta; BN moving statistics are not
counted.

Pure Python: the per-term functions below are also what the differentiable
search cost multiplies by its gates, so the two cannot drift apart. They accept
Python numbers or tensors for the channel arguments.
"""

import dataclasses
import math
from typing import List, Optional, Sequence, Tuple, Union

from autonl_tf import constants
from autonl_tf.arch import codec

__all__ = [
    "conv_macs", "depthwise_macs", "same_out_size", "split_channels",
    "lightnl_orders", "lightnl_macs", "lightnl_params", "nonlocal_macs",
    "se_macs", "stem_macs", "head_macs", "BlockCount", "NetworkCount", "count", "count_block", "check_limits",
]


def same_out_size(size: int, stride: int) -> int:
  """Output size of a 'same'-padded conv (also of `x[::stride]` slicing)."""
  return -(-size // stride)


def split_channels(total: int, groups: int) -> List[int]:
  """MixNet channel split: equal groups, the remainder goes to the first."""
  split = [total // groups] * groups
  split[0] += total - sum(split)
  return split


def conv_macs(kernel: int, cin, cout, hout: int, wout: int):
  return kernel * kernel * cin * cout * hout * wout


def depthwise_macs(kernel: int, channels, hout: int, wout: int):
  return kernel * kernel * channels * hout * wout


def grouped_conv(kernels: Sequence[int], cin: int, cout: int, hout: int,
                 wout: int) -> Tuple[int, int]:
  """(MACs, params) of a grouped conv (one group per kernel size), no bias."""
  macs = params = 0
  for k, ci, co in zip(kernels, split_channels(cin, len(kernels)),
                       split_channels(cout, len(kernels))):
    macs += conv_macs(k, ci, co, hout, wout)
    params += k * k * ci * co
  return macs, params


def mixed_depthwise(kernels: Sequence[int], channels: int, hout: int,
                    wout: int) -> Tuple[int, int]:
  """(MACs, params) of a mixed depthwise conv, no bias."""
  macs = params = 0
  for k, c in zip(kernels, split_channels(channels, len(kernels))):
    macs += depthwise_macs(k, c, hout, wout)
    params += k * k * c
  return macs, params


def lightnl_orders(h: int, w: int, channels, ratio: float, stride: int):
  """MACs of the two product orders of LightNL's `q k^T v`.

  Returns (order_a, order_b): A = `(q k^T) v`, B = `q (k^T v)`. `q` has
  `int(ratio*C)` channels at full resolution; `k` and `v` are `x[::s, ::s]`, so
  their position count is `ceil(H/s) * ceil(W/s)` (what the slicing really
  yields; equal to `HW/s^2` whenever s divides H and W).
  """
  hw = h * w
  hw_red = same_out_size(h, stride) * same_out_size(w, stride)
  rc = _ratio_channels(channels, ratio)
  order_a = hw * hw_red * (channels + rc)
  order_b = hw * rc * channels + hw_red * rc * channels
  return order_a, order_b


def _ratio_channels(channels, ratio):
  if isinstance(channels, int):
    return int(ratio * channels)
  return channels * ratio  # symbolic/tensor channels: the search cost


def use_order_a(h: int, w: int, channels: int, ratio: float, stride: int) -> bool:
  """True when `(q k^T) v` is strictly cheaper than `q (k^T v)`."""
  a, b = lightnl_orders(h, w, channels, ratio, stride)
  return a < b


def lightnl_macs(h: int, w: int, channels: int, ratio: float, stride: int,
                 norm: str = "none") -> int:
  """MACs of a LightNL block: cheaper product order + depthwise 3x3, plus
  `H*W*C` for the mean square of its input with `norm="second_moment"`
  (counted like a global pool; the division scales `q` in place of its
  `1/HW` and costs no MAC)."""
  moment = h * w * channels if codec.check_nl_norm(norm) == "second_moment" else 0
  return min(lightnl_orders(h, w, channels, ratio, stride)) + depthwise_macs(
      3, channels, h, w) + moment


def lightnl_params(channels: int) -> int:
  return 9 * channels + 2 * channels  # depthwise 3x3 + BN gamma/beta


def nonlocal_macs(h: int, w: int, channels: int) -> int:
  """MACs of the conventional non-local block (Wang et al. 2018), embedded
  Gaussian form with inner width C/2: the block that arXiv 2004.01961,
  section 3, "Lightweight Non-Local Blocks", compares LightNL with."""
  hw = h * w
  inner = channels // 2
  return 3 * hw * channels * inner + 2 * hw * hw * inner + hw * inner * channels


def nonlocal_params(channels: int) -> int:
  inner = channels // 2
  # theta/phi/g 1x1 convs with biases, output 1x1 conv (no bias) + BN gamma/beta.
  return 3 * (channels * inner + inner) + inner * channels + 2 * channels


def se_reduced_filters(in_filters: int, se_ratio: float) -> int:
  return max(1, int(in_filters * se_ratio))


def se_macs(h: int, w: int, channels, reduced):
  """Squeeze-excitation: global pool + two 1x1 convs on the pooled vector."""
  return h * w * channels + 2 * channels * reduced


@dataclasses.dataclass(frozen=True)
class BlockCount:
  """MACs and parameters of one built MBConv block (after repeat expansion)."""
  index: int
  spec: codec.BlockSpec
  in_size: Tuple[int, int]
  out_size: Tuple[int, int]
  expanded: int
  macs: int
  params: int
  macs_by_op: Tuple[Tuple[str, int], ...]

  def as_dict(self) -> dict:
    s = self.spec
    return {
        "index": self.index, "block": codec.format_block(s),
        "in_size": list(self.in_size), "out_size": list(self.out_size),
        "in_filters": s.in_filters, "out_filters": s.out_filters,
        "expanded": self.expanded, "kernel": list(s.kernel_sizes),
        "stride": s.strides[0], "expand_ratio": s.expand_ratio,
        "se_ratio": s.se_ratio, "nl_ratio": s.nl_ratio,
        "nl_stride": s.nl_stride, "macs": self.macs, "params": self.params,
        "macs_by_op": dict(self.macs_by_op),
    }


@dataclasses.dataclass(frozen=True)
class NetworkCount:
  """Totals and the per-block breakdown of a whole network."""
  macs: int
  params: int
  stem_macs: int
  stem_params: int
  head_macs: int
  head_params: int
  blocks: Tuple[BlockCount, ...]
  input_size: Tuple[int, int]
  num_classes: int

  def as_dict(self) -> dict:
    return {
        "macs": self.macs, "params": self.params,
        "input_size": list(self.input_size), "num_classes": self.num_classes,
        "stem": {"macs": self.stem_macs, "params": self.stem_params},
        "head": {"macs": self.head_macs, "params": self.head_params},
        "blocks": [b.as_dict() for b in self.blocks],
    }


def count_block(spec: codec.BlockSpec, h: int, w: int, index: int = 0,
                nl_norm: str = "none") -> BlockCount:
  """Counts one block with `repeats == 1` on an `h x w` input (its LightNL's
  product `nl_norm`, `Arch.nl_norm`)."""
  if spec.strides[0] != spec.strides[1]:
    sh, sw = spec.strides
  else:
    sh = sw = spec.strides[0]
  cin, cout = spec.in_filters, spec.out_filters
  ho, wo = same_out_size(h, sh), same_out_size(w, sw)
  expanded = cin * spec.expand_ratio
  ops, params = [], 0
  if spec.expand_ratio != 1:
    m, p = grouped_conv(spec.expand_kernel_sizes, cin, expanded, h, w)
    ops.append(("expand", m))
    params += p + 2 * expanded
  m, p = mixed_depthwise(spec.kernel_sizes, expanded, ho, wo)
  ops.append(("depthwise", m))
  params += p + 2 * expanded
  if spec.has_se:
    red = se_reduced_filters(cin, spec.se_ratio)
    ops.append(("se", se_macs(ho, wo, expanded, red)))
    params += expanded * red + red + red * expanded + expanded
  m, p = grouped_conv(spec.project_kernel_sizes, expanded, cout, ho, wo)
  ops.append(("project", m))
  params += p + 2 * cout
  if spec.has_nonlocal:
    ops.append(("lightnl", lightnl_macs(ho, wo, cout, spec.nl_ratio, spec.nl_stride, nl_norm)))
    params += lightnl_params(cout)
  return BlockCount(index=index, spec=spec, in_size=(h, w), out_size=(ho, wo),
                    expanded=expanded, macs=sum(m for _, m in ops),
                    params=params, macs_by_op=tuple(ops))


def _as_hw(input_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
  if isinstance(input_size, int):
    return input_size, input_size
  h, w = input_size[:2]
  return int(h), int(w)


def stem_macs(h: int, w: int, stride: int, filters: int) -> Tuple[int, Tuple[int, int]]:
  """(MACs, output (h, w)) of the 3x3 stem conv on an RGB `h x w` input."""
  ho, wo = same_out_size(h, stride), same_out_size(w, stride)
  return conv_macs(3, 3, filters, ho, wo), (ho, wo)


def head_macs(h: int, w: int, in_filters: int, head_filters: int, num_classes: int) -> int:
  """MACs of the head: 1x1 conv, global average pool and the classifier."""
  return conv_macs(1, in_filters, head_filters, h, w) + h * w * head_filters + \
      head_filters * num_classes


def count(arch: codec.Arch, input_size: Union[int, Sequence[int]] = constants.INPUT_SIZE,
          num_classes: int = constants.NUM_CLASSES) -> NetworkCount:
  """Counts MACs and trainable parameters of the network `arch` builds.

  Args:
    arch: an `Arch` (see `autonl_tf.arch.load` for names and files).
    input_size: image size, an int or (height, width).
    num_classes: classifier width.
  """
  h, w = _as_hw(input_size)
  stem_c = arch.stem_filters
  stem, (h, w) = stem_macs(h, w, arch.stem_stride, stem_c)
  stem_params = 27 * stem_c + 2 * stem_c
  blocks = []
  for i, spec in enumerate(codec.expand_blocks(arch)):
    b = count_block(spec, h, w, index=i, nl_norm=arch.nl_norm)
    blocks.append(b)
    h, w = b.out_size
  last = blocks[-1].spec.out_filters
  head_c = arch.head_filters
  head = head_macs(h, w, last, head_c, num_classes)
  head_params = last * head_c + 2 * head_c + head_c * num_classes + num_classes
  return NetworkCount(
      macs=stem + sum(b.macs for b in blocks) + head,
      params=stem_params + sum(b.params for b in blocks) + head_params,
      stem_macs=stem, stem_params=stem_params, head_macs=head,
      head_params=head_params, blocks=tuple(blocks),
      input_size=_as_hw(input_size), num_classes=num_classes)


def check_limits(arch: codec.Arch, input_size: Union[int, Sequence[int]] = constants.INPUT_SIZE,
                 num_classes: int = constants.NUM_CLASSES,
                 limits: Optional[codec.ArchLimits] = None) -> NetworkCount:
  """`codec.check_limits`, then the parameters and MACs of the network at
  `input_size` against `limits`; returns the count.

  Raises:
    codec.ArchLimitError: naming the count and the limit.
  """
  limits = limits or codec.ArchLimits()
  codec.check_limits(arch, limits)
  n = count(arch, input_size, num_classes)
  h, w = n.input_size
  for name, value, what in [("params", n.params, "parameters"), ("macs", n.macs, "MACs")]:
    if value > getattr(limits, name):
      raise codec.ArchLimitError(
          f"the network at {h}x{w} with {num_classes} classes has "
          f"{limits.exceeded(name, f'{value:,} {what}')}")
  return n


def format_millions(n: float) -> str:
  return f"{n / 1e6:.1f}M" if not math.isnan(n) else "nan"
