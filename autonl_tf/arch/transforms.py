"""Whole-architecture transforms: a width multiplier and LightNL removal.

`scale_width` multiplies every channel count (stem, blocks, head) the way
MnasNet / EfficientNet's `round_filters` does (nearest multiple of 8, never
below 8 and never more than 10% below the exact product), so that a network
and a search space (`search.space.SearchSpace.scaled`) scaled by one factor
keep matching channel counts. Pure Python.
"""

import dataclasses

from autonl_tf.arch import codec

__all__ = ["round_filters", "scale_width", "without_lightnl"]

DIVISOR = 8


def round_filters(filters: int, multiplier: float, divisor: int = DIVISOR) -> int:
  """`filters * multiplier` rounded to a multiple of `divisor` (MnasNet's
  `round_filters`: at least `divisor`, at most 10% below the product).
  A multiplier of 1 leaves every count unchanged, multiples of 8 or not."""
  if not multiplier > 0:
    raise ValueError(f"the width multiplier must be positive, got {multiplier}")
  if multiplier == 1:
    return int(filters)
  exact = filters * multiplier
  rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * exact:
    rounded += divisor
  return int(rounded)


def scale_block(spec: codec.BlockSpec, multiplier: float) -> codec.BlockSpec:
  return dataclasses.replace(spec, in_filters=round_filters(spec.in_filters, multiplier),
                             out_filters=round_filters(spec.out_filters, multiplier))


def scale_width(arch: codec.Arch, multiplier: float) -> codec.Arch:
  """`arch` with every channel count (stem, block inputs / outputs, head)
  multiplied by `multiplier` (`round_filters`); kernels, expansions, strides,
  SE and LightNL ratios are kept."""
  return dataclasses.replace(
      arch, blocks=tuple(scale_block(b, multiplier) for b in arch.blocks),
      stem_filters=round_filters(arch.stem_filters, multiplier),
      head_filters=round_filters(arch.head_filters, multiplier))


def without_lightnl(arch: codec.Arch) -> codec.Arch:
  """`arch` with every LightNL removed (the plain MBConv backbone)."""
  return dataclasses.replace(arch, blocks=tuple(
      dataclasses.replace(b, nl_ratio=0.0, nl_stride=1) for b in arch.blocks))
