"""A latency table's typed entry key, `Piece`, and the pieces of a network.

A piece is the stem, one MBConv block (without its LightNL), one LightNL,
the head, at its input shape, or the invoke overhead. `str(piece)` (its
`key`) is the entry's name in a table file, which names its content, not its
place: `mbconv 16x16 r1_k5_s22_e6_i24_o40_se0.25`, `lightnl 8x8x40 r0.25 s2`,
`stem 32x32 s1 c16`, `head 4x4x160 c640 k10` (with ` hard_swish` or ` relu6`
appended for networks of that activation, ` second_moment` for LightNLs of
that product), so one table serves a space and every network of it,
whatever position a block lands in.

Pure Python; imports nothing from `autonl_tf.search` (a search space's
pieces are `autonl_tf.search.pieces`).
"""

import dataclasses
from typing import List, Optional, Tuple

from autonl_tf import arch as arch_lib
from autonl_tf import flops

#: The invoke overhead's key: the time of invoking a model that does almost
#: nothing, counted once per network.
OVERHEAD = "overhead"


@dataclasses.dataclass(frozen=True)
class Piece:
  """What one table entry times, and its key (`str(piece)`, `key`).

  kind: `stem`, `mbconv`, `lightnl`, `head` or `overhead`.
  shape: input (h, w, c).
  spec: the block (`mbconv`, without LightNL) or None.
  ratio: LightNL's channel ratio (`lightnl`).
  stride: LightNL's stride (`lightnl`) or the stem's (`stem`).
  filters: the stem's output channels (`stem`) or the head conv's (`head`).
  num_classes: the classifier's width (`head`).
  activation: of the stem, head and MBConv pieces (`arch.ACTIVATIONS`).
  nl_norm: LightNL's product (`lightnl`; `arch.NL_NORMS`).
  """
  kind: str
  shape: Tuple[int, int, int]
  spec: Optional[arch_lib.BlockSpec] = None
  ratio: float = 0.0
  stride: int = 1
  filters: int = 0
  num_classes: int = 0
  activation: str = "swish"
  nl_norm: str = "none"

  @property
  def key(self) -> str:
    """The entry's name in a table file."""
    h, w, c = self.shape
    act = "" if self.activation == "swish" else f" {self.activation}"
    if self.kind == "mbconv":
      return f"mbconv {h}x{w} {arch_lib.format_block(self.spec)}{act}"
    if self.kind == "lightnl":
      norm = "" if self.nl_norm == "none" else f" {self.nl_norm}"
      return f"lightnl {h}x{w}x{c} r{self.ratio:g} s{self.stride}{norm}"
    if self.kind == "stem":
      return f"stem {h}x{w} s{self.stride} c{self.filters}{act}"
    if self.kind == "head":
      return f"head {h}x{w}x{c} c{self.filters} k{self.num_classes}{act}"
    return OVERHEAD

  def __str__(self) -> str:
    return self.key


#: The invoke overhead's piece: one tiny elementwise op.
OVERHEAD_PIECE = Piece(OVERHEAD, (1, 1, 8))


def block_piece(shape, spec: arch_lib.BlockSpec, activation: str) -> Piece:
  """The `mbconv` piece of block `spec` at input `shape`: one repeat,
  without its LightNL (a piece of its own)."""
  return Piece("mbconv", tuple(shape),
               dataclasses.replace(spec, repeats=1, nl_ratio=0.0, nl_stride=1),
               activation=activation)


def stem_piece(input_size: int, stride: int, filters: int, activation: str) -> Piece:
  return Piece("stem", (input_size, input_size, 3), stride=stride, filters=filters,
               activation=activation)


def arch_pieces(arch: arch_lib.Arch, input_size: int, num_classes: int) -> List[Piece]:
  """The pieces of the network `arch` at `input_size`, in order."""
  act = arch.activation
  pieces = [stem_piece(input_size, arch.stem_stride, arch.stem_filters, act)]
  h = w = flops.same_out_size(input_size, arch.stem_stride)
  c = arch.stem_filters
  for spec in arch_lib.expand_blocks(arch):
    pieces.append(block_piece((h, w, c), spec, act))
    h, w, c = flops.same_out_size(h, spec.strides[0]), flops.same_out_size(w, spec.strides[1]), \
        spec.out_filters
    if spec.has_nonlocal:
      pieces.append(Piece("lightnl", (h, w, c), ratio=spec.nl_ratio, stride=spec.nl_stride,
                          nl_norm=arch.nl_norm))
  pieces.append(Piece("head", (h, w, c), filters=arch.head_filters, num_classes=num_classes,
                      activation=act))
  return pieces
