"""Architectures drawn uniformly at random from a search space: the baseline
every search must beat (Li & Talwalkar 2019; Yu et al. 2020).

Every choice of every searchable block is drawn independently, each of its
options equally likely: skipped or kept (skippable blocks only), the kernel,
the expand ratio, LightNL off or on, and, when on, its ratio and stride.
`sample_within` keeps the draws whose MACs are within a tolerance of a
budget (rejection sampling), so the kept networks are uniform over the
space's architectures in that MAC window under this per-choice measure.
Reproducible from the seed; pure Python (no TensorFlow).
"""

import dataclasses
import random
from typing import List, Optional

from autonl_tf import flops
from autonl_tf.arch import Arch
from autonl_tf.search.space import SearchSpace, option_spec

__all__ = ["Sample", "sample_arch", "sample_within"]


def sample_arch(space: SearchSpace, rng: random.Random) -> Arch:
  """One architecture of `space`, every choice drawn uniformly by `rng`."""
  blocks = []
  for _, _, cin, cout, stride, se, skippable in space.blocks():
    if skippable and rng.random() < 0.5:
      continue
    kernel = rng.choice(space.kernel_sizes)
    expand = rng.choice(space.expand_ratios)
    nl_ratio, nl_stride = 0.0, 1
    if rng.random() < 0.5:
      nl_ratio = rng.choice(space.nl_ratios)
      nl_stride = rng.choice(space.nl_strides)
    blocks.append(option_spec(cin, cout, stride, se, kernel, expand, nl_ratio, nl_stride))
  return space.arch(blocks)


@dataclasses.dataclass(frozen=True)
class Sample:
  """A kept draw: the architecture, its MACs and parameters, and `draw`,
  the number of draws from the seed up to and including it."""
  arch: Arch
  macs: int
  params: int
  draw: int


def sample_within(space: SearchSpace, budget: float, count: int, seed: int,
                  input_size: int, num_classes: int, tolerance: float = 0.03,
                  max_draws: Optional[int] = 200_000) -> List[Sample]:
  """The first `count` distinct draws of `sample_arch` (seeded by `seed`)
  whose MACs at `input_size` are within `tolerance` of `budget`.

  Raises:
    ValueError: when `max_draws` draws hold fewer than `count` of them (the
      budget is outside, or at the edge of, what the space can reach).
  """
  if not budget > 0 or not 0 < tolerance < 1 or count < 1:
    raise ValueError(f"need budget > 0, 0 < tolerance < 1 and count >= 1, got {budget}, "
                     f"{tolerance}, {count}")
  rng = random.Random(seed)
  kept, seen, draws = [], set(), 0
  while len(kept) < count:
    if max_draws is not None and draws >= max_draws:
      raise ValueError(
          f"only {len(kept)} of {count} random architectures of space '{space.name}' within "
          f"{100 * tolerance:g}% of {budget / 1e6:.2f}M MACs in {draws} draws: the budget is "
          f"at the edge of or outside the space")
    draws += 1
    arch = sample_arch(space, rng)
    key = tuple(arch.blocks)
    if key in seen:
      continue
    count_ = flops.count(arch, input_size, num_classes)
    if abs(count_.macs / budget - 1) <= tolerance:
      seen.add(key)
      kept.append(Sample(arch, count_.macs, count_.params, draws))
  return kept
