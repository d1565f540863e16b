"""Random architectures of a search space and the width multiplier (pure
Python): valid, uniform per choice, inside the budget window, reproducible;
channel counts checked against hand-computed values."""

import collections
import random

import pytest

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf.search import sampling
from autonl_tf.search.space import get_space

SPACE = get_space("cifar")


@pytest.mark.parametrize("filters,multiplier,expected", [
    # MnasNet's round_filters by hand: nearest multiple of 8, at least 8,
    # bumped by 8 when more than 10% below filters * multiplier.
    (32, 0.5, 16), (16, 0.5, 8), (24, 0.5, 16), (40, 0.5, 24), (80, 0.5, 40), (96, 0.5, 48),
    (192, 0.5, 96), (320, 0.5, 160), (1280, 0.5, 640), (24, 0.35, 8), (96, 0.35, 32),
    (40, 1.4, 56), (12, 1.0, 12), (7, 1.0, 7), (40, 0.1, 8)])
def test_round_filters_by_hand(filters, multiplier, expected):
  assert arch_lib.round_filters(filters, multiplier) == expected


def test_round_filters_rejects_a_bad_multiplier():
  with pytest.raises(ValueError, match="positive"):
    arch_lib.round_filters(32, 0)
  with pytest.raises(ValueError, match=r"width multiplier must be in \(0, 8\]"):
    get_space("cifar", width_multiplier=-1)


def test_half_width_space_and_preset_by_hand():
  half = get_space("cifar", width_multiplier=0.5)
  assert [s.channels for s in half.stages] == [16, 24, 40, 48, 96, 160]
  assert (half.stem_filters, half.first_block, half.head_filters) == (16, "r1_k3_s11_e1_i16_o8", 640)
  assert half.width_multiplier == 0.5 and SPACE.width_multiplier == 1.0
  hand = arch_lib.scale_width(arch_lib.load("autonl-s-cifar"), 0.5)
  text = arch_lib.format_arch(hand)
  assert text.splitlines()[0] == "#! stem_stride=1 head_filters=640 nl_norm=second_moment"
  assert "r1_k5_s22_e6_i24_o40_se0.25_nonlocal0.25" in text  # kernels, SE, LightNL kept
  assert arch_lib.parse_arch(text) == hand  # a valid chain
  # The head at 4x4: 1x1 conv 160 -> 640, pool, classifier: by hand.
  count = flops.count(hand, 32, 10)
  assert count.head_macs == 160 * 640 * 16 + 640 * 16 + 640 * 10
  assert arch_lib.without_lightnl(hand).blocks[1].nl_ratio == 0
  assert flops.count(arch_lib.without_lightnl(hand), 32, 10).macs < count.macs


def _space_positions(space):
  return [(cin, cout, stride, se, skippable) for _, _, cin, cout, stride, se, skippable
          in space.blocks()]


def _check_valid(arch, space):
  """Every block is the next position of the space (skipping only
  skippable ones) with one of its options."""
  assert arch.stem_stride == space.stem_stride and arch.stem_filters == space.stem_filters
  assert arch.head_filters == space.head_filters
  assert arch_lib.format_block(arch.blocks[0]) == space.first_block
  positions = iter(_space_positions(space))
  for block in arch.blocks[1:]:
    cin, cout, stride, se, skippable = next(positions)
    while (cin, cout, stride) != (block.in_filters, block.out_filters, block.strides[0]):
      assert skippable, f"a block that cannot be skipped is missing before {block}"
      cin, cout, stride, se, skippable = next(positions)
    assert block.se_ratio == se and block.strides == (stride, stride)
    assert block.kernel_sizes[0] in space.kernel_sizes and len(block.kernel_sizes) == 1
    assert block.expand_ratio in space.expand_ratios
    assert block.nl_ratio == 0 or (block.nl_ratio in space.nl_ratios
                                   and block.nl_stride in space.nl_strides)
  assert all(skippable for *_, skippable in positions)
  assert arch_lib.parse_arch(arch_lib.format_arch(arch)) == arch


def test_samples_are_valid_and_uniform_per_choice():
  rng = random.Random(3)
  n = 3000
  kernels, expands, nl, ratios, kept = (collections.Counter() for _ in range(5))
  skippable = sum(1 for *_, s in _space_positions(SPACE) if s)
  for _ in range(n):
    arch = sampling.sample_arch(SPACE, rng)
    _check_valid(arch, SPACE)
    kept[len(arch.blocks) - 1] += 1
    for b in arch.blocks[1:]:
      kernels[b.kernel_sizes[0]] += 1
      expands[b.expand_ratio] += 1
      nl[b.nl_ratio > 0] += 1
      if b.nl_ratio:
        ratios[b.nl_ratio] += 1

  def uniform(counter, options):
    total = sum(counter.values())
    for o in options:  # within 4 binomial standard deviations
      p = 1 / len(options)
      assert abs(counter[o] - total * p) < 4 * (total * p * (1 - p)) ** 0.5, (o, counter)

  uniform(kernels, SPACE.kernel_sizes)
  uniform(expands, SPACE.expand_ratios)
  uniform(nl, (True, False))
  uniform(ratios, SPACE.nl_ratios)
  # Each skippable block kept with probability 1/2: mean depth by hand.
  mean_depth = sum(k * c for k, c in kept.items()) / n
  expected = len(SPACE.blocks()) - skippable / 2
  assert abs(mean_depth - expected) < 4 * (skippable * 0.25 / n) ** 0.5


def test_sample_within_hits_the_window_and_is_reproducible():
  half = get_space("cifar", width_multiplier=0.5)
  budget = flops.count(arch_lib.scale_width(arch_lib.load("autonl-s-cifar"), 0.5), 32, 10).macs
  a = sampling.sample_within(half, budget, 5, seed=0, input_size=32, num_classes=10)
  b = sampling.sample_within(half, budget, 5, seed=0, input_size=32, num_classes=10)
  c = sampling.sample_within(half, budget, 5, seed=1, input_size=32, num_classes=10)
  assert a == b and [s.arch for s in a] != [s.arch for s in c]
  assert len({s.arch for s in a}) == 5
  for s in a:
    _check_valid(s.arch, half)
    count = flops.count(s.arch, 32, 10)
    assert (s.macs, s.params) == (count.macs, count.params)
    assert abs(s.macs / budget - 1) <= 0.03
  assert [s.draw for s in a] == sorted(s.draw for s in a)


def test_a_scaled_space_draws_the_scaled_architectures():
  """The same seed draws the same choices in any width: the half-width draw
  is the full-width draw with every channel count scaled."""
  half = get_space("cifar", width_multiplier=0.5)
  for seed in range(20):
    full = sampling.sample_arch(SPACE, random.Random(seed))
    assert sampling.sample_arch(half, random.Random(seed)) == arch_lib.scale_width(full, 0.5)


def test_an_unreachable_budget_is_named():
  with pytest.raises(ValueError, match=r"only 0 of 2 random architectures of space 'cifar' "
                                       r"within 3% of 0.00M MACs in 500 draws"):
    sampling.sample_within(SPACE, 1000, 2, seed=0, input_size=32, num_classes=10,
                           max_draws=500)


def test_draws_within_the_window_follow_the_exact_conditional_distribution():
  """`sample_within` keeps a draw only inside the MAC window, so its draws
  are the space's per-choice measure conditioned on the window. Reference:
  every architecture of a small space enumerated with its probability
  (skip 1/2; kernel, expansion 1/2 each; LightNL off 1/2, each ratio 1/4),
  the window's conditional marginals of every decision computed exactly,
  then compared with the frequencies of 3000 independent draws (one per
  seed) within 4 binomial standard deviations."""
  import itertools
  from autonl_tf.search.space import SearchSpace, Stage, option_spec
  space = SearchSpace(name="enum", stages=(Stage(16, 2, 1), Stage(24, 1, 2, 0.25)),
                      stem_filters=8, stem_stride=1, first_block="", head_filters=32,
                      kernel_sizes=(3, 5), nl_ratios=(0.25, 0.5), nl_strides=(1,))
  positions = space.blocks()
  options = [(k, e, r, p) for k in (3, 5) for e in (3, 6)
             for r, p in ((0.0, 0.5), (0.25, 0.25), (0.5, 0.25))]
  per_block = []
  for _, _, cin, cout, stride, se, skippable in positions:
    choices = [(option_spec(cin, cout, stride, se, k, e, r), p / 4) for k, e, r, p in options]
    per_block.append(([(None, 0.5)] + [(s, p / 2) for s, p in choices]) if skippable
                     else choices)
  archs = []
  for combo in itertools.product(*per_block):
    prob = 1.0
    for _, p in combo:
      prob *= p
    arch = space.arch([s for s, _ in combo if s is not None])
    archs.append((combo, prob, flops.count(arch, 16, 5).macs))
  assert abs(sum(p for _, p, _ in archs) - 1) < 1e-9
  budget, tolerance = sorted(m for *_, m in archs)[len(archs) // 2], 0.1
  inside = [(c, p) for c, p, m in archs if abs(m / budget - 1) <= tolerance]
  assert 0.05 < len(inside) / len(archs) < 0.6  # the window cuts the space

  def features(combo):
    """Each block's (kept, kernel 5, e6, LightNL ratio) as a tuple of keys."""
    out = []
    for i, (spec, _) in enumerate(combo):
      if spec is None:
        out.append((i, "skipped"))
        continue
      out += [(i, "k5", spec.kernel_sizes == (5,)), (i, "e6", spec.expand_ratio == 6),
              (i, "nl", spec.nl_ratio)]
    return out

  total = sum(p for _, p in inside)
  exact = collections.Counter()
  for combo, p in inside:
    for f in features(combo):
      exact[f] += p / total
  prior = collections.Counter()
  for combo, p, _ in archs:
    for f in features(combo):
      prior[f] += p
  # The window changes the marginals (so the check below can tell a draw that ignores it).
  assert max(abs(exact[f] - prior[f]) for f in exact) > 0.1

  n = 3000
  by_arch = {space.arch([s for s, _ in c if s is not None]): c for c, _ in inside}
  seen = collections.Counter()
  for seed in range(n):
    (sample,) = sampling.sample_within(space, budget, 1, seed, 16, 5, tolerance)
    for f in features(by_arch[sample.arch]):
      seen[f] += 1
  for f, p in exact.items():
    sigma = (n * p * (1 - p)) ** 0.5
    assert abs(seen[f] - n * p) <= 4 * sigma + 1e-9, (f, seen[f] / n, p)


def test_the_default_space_follows_the_input_size():
  from autonl_tf.search.space import default_space
  assert [default_space(s) for s in (16, 32, 64, 96, 224)] == [
      "cifar", "cifar", "cifar", "autonl-imagenet", "autonl-imagenet"]
  # The 32px default holds the hand-placed CIFAR network's 17 blocks.
  assert len(get_space(default_space(32)).blocks()) == 17
