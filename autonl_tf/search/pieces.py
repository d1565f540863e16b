"""A search space as latency-table pieces: the `latency.Piece` of every
option of every searchable block (`space_block_pieces`, keyed by the typed
`BlockOption` / `NLOption` that `search.cost` reads them by), the pieces no
decision changes (`space_fixed_pieces`), all of them once (`space_pieces`,
what a space's table times), what the table names its space
(`space_what`), and the networks a table is calibrated on
(`calibration_archs`).

Pure Python. The dependency goes one way: this module imports
`autonl_tf.latency`, which imports nothing from `autonl_tf.search`.
"""

import dataclasses
import random
from typing import Dict, List, Union

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf.latency.keys import Piece, block_piece, stem_piece
from autonl_tf.search import sampling
from autonl_tf.search.space import option_spec


@dataclasses.dataclass(frozen=True)
class BlockOption:
  """A searchable block's body with depthwise `kernel` and `expand` ratio."""
  kernel: int
  expand: int


@dataclasses.dataclass(frozen=True)
class NLOption:
  """A searchable block's LightNL with channel `ratio` and `stride`."""
  ratio: float
  stride: int


Option = Union[BlockOption, NLOption]


def _space_sizes(space, input_size):
  """[(in size, out size)] of every searchable block of `space`."""
  h = flops.same_out_size(input_size, space.stem_stride)
  if space.first_block:
    h = flops.same_out_size(h, arch_lib.parse_block(space.first_block).strides[0])
  sizes = []
  for block in space.blocks():
    sizes.append((h, flops.same_out_size(h, block[4])))
    h = sizes[-1][1]
  return sizes


def space_block_pieces(space, input_size) -> List[Dict[Option, Piece]]:
  """Per searchable block of `space`: {option: Piece}, a `BlockOption` for
  every kernel and expand ratio (the block) and an `NLOption` for every
  LightNL ratio and stride."""
  out = []
  for (h, ho), (_, _, cin, cout, stride, se, _) in zip(_space_sizes(space, input_size),
                                                        space.blocks()):
    options = {}
    for k in space.kernel_sizes:
      for e in space.expand_ratios:
        options[BlockOption(k, e)] = Piece("mbconv", (h, h, cin),
                                           option_spec(cin, cout, stride, se, k, e),
                                           activation=space.activation)
    for r in space.nl_ratios:
      for s in space.nl_strides:
        options[NLOption(r, s)] = Piece("lightnl", (ho, ho, cout), ratio=r, stride=s,
                                        nl_norm=space.nl_norm)
    out.append(options)
  return out


def space_fixed_pieces(space, input_size: int, num_classes: int) -> List[Piece]:
  """The pieces of `space` no decision changes: the stem, the fixed first
  block (if any) and the head."""
  act = space.activation
  pieces = [stem_piece(input_size, space.stem_stride, space.stem_filters, act)]
  if space.first_block:
    h = flops.same_out_size(input_size, space.stem_stride)
    pieces.append(block_piece((h, h, space.stem_filters),
                              arch_lib.parse_block(space.first_block), act))
  last = _space_sizes(space, input_size)[-1][1]
  pieces.append(Piece("head", (last, last, space.stages[-1].channels),
                      filters=space.head_filters, num_classes=num_classes, activation=act))
  return pieces


def space_pieces(space, input_size: int, num_classes: int) -> List[Piece]:
  """Every piece any network of `space` is made of: the fixed ones and
  every option of every searchable block, each shape once."""
  pieces = space_fixed_pieces(space, input_size, num_classes)
  for options in space_block_pieces(space, input_size):
    pieces.extend(options.values())
  return list(dict((p.key, p) for p in pieces).values())


def space_what(space) -> str:
  """How a space's table names what it covers (its settings' `what`)."""
  act = "" if space.activation == "swish" else f" {space.activation}"
  norm = "" if space.nl_norm == "none" else f" nl_norm={space.nl_norm}"
  return f"space {space.name} x{space.width_multiplier:g}{act}{norm}"


#: Seed of the calibration networks (`calibration_archs`), apart from the
#: seeds that test or search use.
CALIBRATION_SEED = 9_000_001


def calibration_archs(space, count: int) -> List[arch_lib.Arch]:
  """`count` random networks of `space` (every decision uniform,
  `sampling.sample_arch`) from `CALIBRATION_SEED`."""
  rng = random.Random(CALIBRATION_SEED)
  return [sampling.sample_arch(space, rng) for _ in range(count)]
