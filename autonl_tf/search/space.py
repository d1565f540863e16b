"""Declarative search spaces (arXiv 2004.01961, section 4; the macro of
Single-Path NAS, arXiv 1904.02877).

A space is a stem, stages and a head. Every block of a stage chooses a
depthwise kernel (3/5/7), an expand ratio (3/6), whether it is skipped (only
stride-1 blocks that are not the first of their stage), whether a LightNL
follows it, and that LightNL's channel ratio and stride.
"""

import dataclasses
from typing import Dict, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Stage:
  """Blocks with the same output channels.

  Attributes:
    channels: output channels.
    blocks: number of blocks.
    stride: stride of the first block.
    se_ratio: squeeze-excitation ratio (of the block's input channels) of
      the first block, and of every block unless `se_ratio_rest` (0: none).
    se_ratio_rest: that of the blocks after the first (None: `se_ratio`),
      as AutoNL-S has 0.25 on a stage's first block and 0.5 on the others.
  """
  channels: int
  blocks: int
  stride: int
  se_ratio: float = 0.0
  se_ratio_rest: Optional[float] = None

  def block_se_ratio(self, index: int) -> float:
    """The SE ratio of the stage's block `index` (0: the first)."""
    if index == 0 or self.se_ratio_rest is None:
      return self.se_ratio
    return self.se_ratio_rest


@dataclasses.dataclass(frozen=True)
class SearchSpace:
  """Attributes:
    name: space name.
    stages: the searchable stages.
    stem_filters / stem_stride: 3x3 stem conv.
    first_block: the fixed first block (MnasNet's e1 k3 block) as a string,
      or "" for none.
    head_filters: 1x1 head conv width.
    kernel_sizes: depthwise kernel choices (nested: a subset of (3, 5, 7)).
    expand_ratios: (small, large) expand ratio choice.
    nl_ratios: LightNL channel ratios, ascending (nested prefixes).
    nl_strides: LightNL strides, (1, 2) or a single one.
    width_multiplier: the factor `scaled` applied to every channel count
      (recorded; 1 for the spaces as defined).
    activation: of every network of the space (`arch.ACTIVATIONS`; the
      paper's `swish`).
    nl_norm: LightNL's product in every network of the space
      (`arch.NL_NORMS`): the paper's `none`, but `second_moment` in the
      32px spaces (`cifar`, `cifar13`, `autonl-cifar`).
  """
  name: str
  stages: Tuple[Stage, ...]
  stem_filters: int = 32
  stem_stride: int = 2
  first_block: str = "r1_k3_s11_e1_i32_o16"
  head_filters: int = 1280
  kernel_sizes: Tuple[int, ...] = (3, 5, 7)
  expand_ratios: Tuple[int, int] = (3, 6)
  nl_ratios: Tuple[float, ...] = (0.125, 0.25, 0.5)
  nl_strides: Tuple[int, ...] = (1, 2)
  width_multiplier: float = 1.0
  activation: str = "swish"
  nl_norm: str = "none"

  def __post_init__(self):
    from autonl_tf.arch import check_activation, check_nl_norm
    check_activation(self.activation)
    check_nl_norm(self.nl_norm)
    if tuple(self.kernel_sizes) not in ((3,), (3, 5), (3, 5, 7)):
      raise ValueError(f"kernel_sizes must be (3,), (3, 5) or (3, 5, 7), got {self.kernel_sizes}")
    if len(self.expand_ratios) != 2 or not 0 < self.expand_ratios[0] < self.expand_ratios[1]:
      raise ValueError(f"expand_ratios must be two increasing ratios, got {self.expand_ratios}")
    if list(self.nl_ratios) != sorted(self.nl_ratios) or not all(0 < r <= 1 for r in self.nl_ratios):
      raise ValueError(f"nl_ratios must be ascending in (0, 1], got {self.nl_ratios}")
    if tuple(self.nl_strides) not in ((1,), (2,), (1, 2)):
      raise ValueError(f"nl_strides must be (1,), (2,) or (1, 2), got {self.nl_strides}")

  @property
  def first_out(self) -> int:
    if self.first_block:
      from autonl_tf.arch import parse_block
      return parse_block(self.first_block).out_filters
    return self.stem_filters

  def blocks(self):
    """(stage index, block index in stage, in channels, out channels, stride,
    se ratio, skippable) for every searchable block."""
    out, cin = [], self.first_out
    for si, st in enumerate(self.stages):
      for bi in range(st.blocks):
        stride = st.stride if bi == 0 else 1
        out.append((si, bi, cin, st.channels, stride, st.block_se_ratio(bi),
                    bi > 0 and stride == 1 and cin == st.channels))
        cin = st.channels
    return out

  def scaled(self, multiplier: float) -> "SearchSpace":
    """The space with every channel count (stem, fixed first block, stages,
    head) multiplied by `multiplier` as `arch.scale_width` scales a network,
    so that `scale_width(a, m)` of any architecture `a` of this space is an
    architecture of `scaled(m)`."""
    from autonl_tf.arch import format_block, parse_block, transforms
    if multiplier == 1:
      return self
    first = (format_block(transforms.scale_block(parse_block(self.first_block), multiplier))
             if self.first_block else "")
    return dataclasses.replace(
        self, stem_filters=transforms.round_filters(self.stem_filters, multiplier),
        first_block=first, head_filters=transforms.round_filters(self.head_filters, multiplier),
        stages=tuple(dataclasses.replace(st, channels=transforms.round_filters(st.channels,
                                                                              multiplier))
                     for st in self.stages),
        width_multiplier=self.width_multiplier * multiplier)

  def arch(self, blocks):
    """The network of this space with the searchable blocks `blocks`
    (`BlockSpec`s of the blocks kept, in order), its fixed first block,
    stem and head."""
    from autonl_tf.arch import Arch, parse_block
    first = [parse_block(self.first_block)] if self.first_block else []
    return Arch(blocks=tuple(first + list(blocks)), stem_stride=self.stem_stride,
                stem_filters=self.stem_filters, head_filters=self.head_filters,
                activation=self.activation, nl_norm=self.nl_norm)


def option_spec(in_filters, out_filters, stride, se_ratio, kernel, expand, nl_ratio=0.0,
                nl_stride=1):
  """The `BlockSpec` of one option of a searchable block: its position
  (channels, stride, SE) with a kernel, an expand ratio and a LightNL (ratio
  0: none)."""
  from autonl_tf.arch import BlockSpec
  return BlockSpec(repeats=1, kernel_sizes=(kernel,), strides=(stride, stride),
                   expand_ratio=expand, in_filters=in_filters, out_filters=out_filters,
                   se_ratio=se_ratio, nl_ratio=nl_ratio, nl_stride=nl_stride)


SPACES: Dict[str, SearchSpace] = {
    # The 224px MobileNetV2-like macro of Single-Path NAS (4,4,4,4,4,1 blocks),
    # SE from the 80-channel stage on, as in AutoNL-S/L.
    "autonl-imagenet": SearchSpace(
        name="autonl-imagenet",
        stages=(Stage(24, 4, 2), Stage(40, 4, 2), Stage(80, 4, 2, 0.25), Stage(96, 4, 1, 0.25),
                Stage(192, 4, 2, 0.25), Stage(320, 1, 1, 0.25))),
    # 32px inputs: the macro of the autonl-s-cifar preset (stride-1 stem, 2, 3,
    # 3, 4, 4, 1 blocks, downsampling at the 40-, 80- and 192-channel stages,
    # so the last stages see 8x8 and 4x4 maps, SE 0.25 / 0.5 from the
    # 80-channel stage on), so the hand-placed network is one of the space's.
    # LightNL's second-moment product, as in the autonl-*-cifar presets (the
    # paper's cubic product blows up at evaluation on CIFAR-10).
    "cifar": SearchSpace(
        name="cifar",
        stages=(Stage(24, 2, 1), Stage(40, 3, 2), Stage(80, 3, 2, 0.25, 0.5),
                Stage(96, 4, 1, 0.25, 0.5), Stage(192, 4, 2, 0.25, 0.5),
                Stage(320, 1, 1, 0.5)),
        stem_stride=1, head_filters=1280, nl_norm="second_moment"),
    # The shallower 32px space of the first search-vs-random study (2, 2, 3,
    # 2, 3, 1 blocks: at most 13, where autonl-s-cifar has 17).
    "cifar13": SearchSpace(
        name="cifar13",
        stages=(Stage(24, 2, 1), Stage(40, 2, 2), Stage(80, 3, 2, 0.25), Stage(96, 2, 1, 0.25),
                Stage(192, 3, 2, 0.25), Stage(320, 1, 1, 0.25)),
        stem_stride=1, head_filters=1280, nl_norm="second_moment"),
    # A few-thousand-parameter space for smoke runs and tests (16px inputs).
    "tiny": SearchSpace(
        name="tiny", stages=(Stage(16, 2, 1), Stage(24, 2, 2, 0.25)), stem_filters=8,
        stem_stride=1, first_block="", head_filters=32),
}

# The autonl-imagenet macro at 32px: only the stem keeps stride 1, so the four
# downsamplings give 16/8/4/4/2 maps. AutoNL-S with a stride-1 stem has this
# macro. LightNL's second-moment product, as in the `cifar` space.
SPACES["autonl-cifar"] = dataclasses.replace(SPACES["autonl-imagenet"], name="autonl-cifar",
                                             stem_stride=1, nl_norm="second_moment")


def default_space(input_size: int) -> str:
  """The space a search of `input_size` px images gets by default: `cifar`
  up to 64px, `autonl-imagenet` above."""
  return "cifar" if input_size <= 64 else "autonl-imagenet"


def get_space(name: str, width_multiplier: float = 1.0, **overrides) -> SearchSpace:
  """The space `name`, with `overrides` of its fields, scaled by
  `width_multiplier` (`SearchSpace.scaled`)."""
  if name not in SPACES:
    raise ValueError(f"unknown search space '{name}' (known: {', '.join(sorted(SPACES))})")
  if not 0 < width_multiplier <= 8:
    raise ValueError(f"the width multiplier must be in (0, 8], got {width_multiplier}")
  space = SPACES[name]
  space = dataclasses.replace(space, **overrides) if overrides else space
  return space.scaled(width_multiplier)
