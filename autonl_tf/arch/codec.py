"""Architecture strings: the official AutoNL / MnasNet `arch.txt` format.

One block per line, tokens joined by `_` (the format of the official code,
github.com/LiYingwei/AutoNL, for the networks of arXiv 2004.01961):

  r<repeats>  k<kernel sizes, dot-separated>  a<expand kernels>  p<project kernels>
  s<two stride digits>  e<expand ratio>  i<in filters>  o<out filters>  se<ratio>
  noskip  sw  nonlocal[<ratio>[-<stride>]]

Example: `r1_k5_s22_e6_i40_o80_se0.25_nonlocal0.25-2`.

This module is pure Python (no TensorFlow) so that parsing, formatting and MAC
counting can run anywhere. Parsing is strict: every malformed line raises a
`ValueError` naming the line number and the offending token.

An arch file may also carry comment lines (`# ...`, ignored) and one optional
directive line `#! stem_stride=<1|2> stem_filters=<n> head_filters=<n>
activation=<swish|hard_swish|relu6> nl_norm=<none|second_moment>` for
networks whose stem, head, activation or LightNL product differ from
AutoNL's (e.g. CIFAR-size search spaces with a stride-1 stem; `hard_swish` /
`relu6` networks for CPUs, where swish's LOGISTIC + MUL after every
convolution is a third of the time; LightNL normalised by its input's second
moment, `layers.LightNL`). Files without it are exactly the official format.

Parsing also enforces `ArchLimits` (widths, depth, kernel sizes, expansion;
`flops.check_limits` adds parameters and MACs at an input size), so that a
typo like `o99999999` or `r10000` fails at once with an `ArchLimitError`
instead of exhausting the machine while the graph is built.
"""

import dataclasses
import re
from typing import Optional, Sequence, Tuple

__all__ = [
    "BlockSpec", "Arch", "ArchLimits", "ArchLimitError", "parse_block", "format_block",
    "parse_arch", "format_arch", "expand_blocks", "check_limits", "ACTIVATIONS",
    "check_activation", "NL_NORMS", "check_nl_norm",
]

_DIRECTIVE = "#!"
#: The network-wide activations (`Arch.activation`); `swish` is the paper's.
ACTIVATIONS = ("swish", "hard_swish", "relu6")


def check_activation(name: str) -> str:
  """`name` if it is one of `ACTIVATIONS`, else a ValueError naming them."""
  if name not in ACTIVATIONS:
    raise ValueError(f"unknown activation '{name}' (expected {', '.join(ACTIVATIONS)})")
  return name


#: LightNL's product (`Arch.nl_norm`): `none` is the paper's `(q k^T) v / HW`,
#: `second_moment` divides it by the per-image mean square of the block's
#: input (`layers.lightnl_aggregate`).
NL_NORMS = ("none", "second_moment")


def check_nl_norm(name: str) -> str:
  """`name` if it is one of `NL_NORMS`, else a ValueError naming them."""
  if name not in NL_NORMS:
    raise ValueError(f"unknown LightNL norm '{name}' (expected {', '.join(NL_NORMS)})")
  return name


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"


@dataclasses.dataclass(frozen=True)
class BlockSpec:
  """One line of an arch file (a group of `repeats` identical MBConv blocks).

  Attributes:
    repeats: number of blocks; only the first has `strides` and `in_filters`,
      the rest have stride 1 and `in_filters == out_filters`.
    kernel_sizes: depthwise kernel sizes; more than one means a mixed
      (MixNet-style) depthwise conv split over channel groups.
    strides: (stride_h, stride_w) of the depthwise conv of the first block.
    expand_ratio: expansion of the inverted bottleneck (1 = no expand conv).
    in_filters: input channels of the first block.
    out_filters: output channels.
    se_ratio: squeeze-excitation ratio relative to `in_filters`; 0 = no SE.
    id_skip: False when the line has `noskip`.
    swish: True when the line has `sw` (kept for round trips; AutoNL models use
      swish everywhere).
    expand_kernel_sizes: kernel sizes of the (grouped) expand conv.
    project_kernel_sizes: kernel sizes of the (grouped) project conv.
    nl_ratio: LightNL channel ratio r; 0 = no LightNL after the block.
    nl_stride: LightNL spatial stride s.
  """
  repeats: int
  kernel_sizes: Tuple[int, ...]
  strides: Tuple[int, int]
  expand_ratio: int
  in_filters: int
  out_filters: int
  se_ratio: float = 0.0
  id_skip: bool = True
  swish: bool = False
  expand_kernel_sizes: Tuple[int, ...] = (1,)
  project_kernel_sizes: Tuple[int, ...] = (1,)
  nl_ratio: float = 0.0
  nl_stride: int = 1

  @property
  def has_se(self) -> bool:
    return self.se_ratio > 0

  @property
  def has_nonlocal(self) -> bool:
    return self.nl_ratio > 0


@dataclasses.dataclass(frozen=True)
class Arch:
  """A whole network: the block lines plus the stem and head settings.

  Attributes:
    blocks: the block lines, in order.
    stem_stride: stride of the 3x3 stem conv (2 in MnasNet / AutoNL).
    stem_filters: stem output channels; defaults to the first block's input.
    head_filters: channels of the 1x1 head conv (1280).
    activation: after the stem, the head and every expand and depthwise conv
      (`ACTIVATIONS`; the paper's `swish`).
    nl_norm: LightNL's product in every block (`NL_NORMS`; the paper's `none`).
  """
  blocks: Tuple[BlockSpec, ...]
  stem_stride: int = 2
  stem_filters: Optional[int] = None
  head_filters: int = 1280
  activation: str = "swish"
  nl_norm: str = "none"

  def __post_init__(self):
    check_activation(self.activation)
    check_nl_norm(self.nl_norm)
    object.__setattr__(self, "blocks", tuple(self.blocks))
    if self.stem_filters is None and self.blocks:
      object.__setattr__(self, "stem_filters", self.blocks[0].in_filters)


class ArchLimitError(ValueError):
  """An architecture above one of its `ArchLimits`."""


@dataclasses.dataclass(frozen=True)
class ArchLimits:
  """Upper bounds on an architecture, generous for real networks (AutoNL-L:
  1280 channels, 21 blocks, kernels up to 7, 5.6M parameters, 353M MACs at
  224px); raise one with `ArchLimits(params=2e9)`, or in the tools with
  `--arch_limits=params=2e9`.

  Attributes:
    width: channels of any layer (block input, output and expanded channels,
      stem and head).
    depth: built blocks (the repeats summed).
    kernel: kernel size of any conv.
    expand: expansion ratio.
    params: trainable parameters (`flops.check_limits`, at an input size).
    macs: multiply-accumulates per image at the input size (likewise).
  """
  width: int = 16384
  depth: int = 512
  kernel: int = 31
  expand: int = 32
  params: float = 1e9
  macs: float = 1e12

  @classmethod
  def parse(cls, items: Sequence[str]) -> "ArchLimits":
    """From `name=value` strings, e.g. `["params=2e9", "depth=1000"]`."""
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for item in items:
      name, _, value = item.partition("=")
      if name not in names:
        raise ValueError(f"unknown arch limit {item!r}: expected name=value with name one of "
                         f"{', '.join(names)}")
      try:
        number = float(value)
      except ValueError:
        raise ValueError(f"arch limit {item!r}: {value!r} is not a number") from None
      if not number > 0:
        raise ValueError(f"arch limit {item!r} must be positive")
      values[name] = number if name in ("params", "macs") else int(number)
    return cls(**values)

  def exceeded(self, name: str, what: str) -> str:
    """The error text of `what` (e.g. "99,999,999 output channels") above
    the limit `name`."""
    return (f"{what}, above the limit of {getattr(self, name):,.0f} "
            f"(raise it with --arch_limits={name}=N)")


def check_limits(arch: "Arch", limits: Optional[ArchLimits] = None,
                 line_nos: Optional[Sequence[int]] = None):
  """Raises `ArchLimitError` naming the line and token of the first block
  (or stem / head) above `limits` (default `ArchLimits()`), then the depth."""
  limits = limits or ArchLimits()
  line_nos = line_nos or [None] * len(arch.blocks)
  for spec, line_no in zip(arch.blocks, line_nos):
    e = spec.expand_ratio
    for name, value, what, token in [
        ("width", spec.in_filters, "{:,} input channels", f"i{spec.in_filters}"),
        ("width", spec.out_filters, "{:,} output channels", f"o{spec.out_filters}"),
        ("expand", e, "expand ratio {}", f"e{e}"),
        ("width", spec.in_filters * e, "{:,} expanded channels", f"e{e}"),
        ("kernel", max(spec.kernel_sizes), "kernel size {}", f"k{_fmt_ints(spec.kernel_sizes)}"),
        ("kernel", max(spec.expand_kernel_sizes), "kernel size {}",
         f"a{_fmt_ints(spec.expand_kernel_sizes)}"),
        ("kernel", max(spec.project_kernel_sizes), "kernel size {}",
         f"p{_fmt_ints(spec.project_kernel_sizes)}"),
        ("depth", spec.repeats, "{:,} repeats", f"r{spec.repeats}")]:
      if value > getattr(limits, name):
        where = f"line {line_no}: " if line_no is not None else ""
        raise ArchLimitError(f"{where}'{token}': {limits.exceeded(name, what.format(value))}")
  for token, value in [("stem_filters", arch.stem_filters), ("head_filters", arch.head_filters)]:
    if value is not None and value > limits.width:
      raise ArchLimitError(f"'{token}={value}': {limits.exceeded('width', f'{value:,} channels')}")
  depth = sum(spec.repeats for spec in arch.blocks)
  if depth > limits.depth:
    raise ArchLimitError(f"the arch has {limits.exceeded('depth', f'{depth:,} blocks')}")


def _fmt_float(x: float) -> str:
  return repr(float(x))


def _fmt_ints(values: Sequence[int]) -> str:
  return ".".join(str(v) for v in values)


def format_block(spec: BlockSpec) -> str:
  """Writes a `BlockSpec` as a canonical block string."""
  tokens = [f"r{spec.repeats}", f"k{_fmt_ints(spec.kernel_sizes)}"]
  if tuple(spec.expand_kernel_sizes) != (1,):
    tokens.append(f"a{_fmt_ints(spec.expand_kernel_sizes)}")
  if tuple(spec.project_kernel_sizes) != (1,):
    tokens.append(f"p{_fmt_ints(spec.project_kernel_sizes)}")
  tokens += [f"s{spec.strides[0]}{spec.strides[1]}", f"e{spec.expand_ratio}",
             f"i{spec.in_filters}", f"o{spec.out_filters}"]
  if spec.has_se:
    tokens.append(f"se{_fmt_float(spec.se_ratio)}")
  if not spec.id_skip:
    tokens.append("noskip")
  if spec.swish:
    tokens.append("sw")
  if spec.has_nonlocal:
    nl = f"nonlocal{_fmt_float(spec.nl_ratio)}"
    if spec.nl_stride != 1:
      nl += f"-{spec.nl_stride}"
    tokens.append(nl)
  return "_".join(tokens)


def _fail(line_no: Optional[int], token: str, why: str):
  where = f"line {line_no}: " if line_no is not None else ""
  raise ValueError(f"{where}bad token '{token}': {why}")


def _positive_int(text: str, token: str, line_no) -> int:
  if not re.fullmatch(r"\d+", text):
    _fail(line_no, token, "expected a positive integer")
  value = int(text)
  if value <= 0:
    _fail(line_no, token, "must be positive")
  return value


def _kernel_list(text: str, token: str, line_no) -> Tuple[int, ...]:
  parts = text.split(".")
  if not text or any(not p for p in parts):
    _fail(line_no, token, "expected dot-separated kernel sizes like 3.5.7")
  sizes = tuple(_positive_int(p, token, line_no) for p in parts)
  for k in sizes:
    if k % 2 == 0:
      _fail(line_no, token, f"kernel size {k} is even; only odd sizes keep 'same' padding centred")
  return sizes


def _ratio(text: str, token: str, line_no) -> float:
  if not re.fullmatch(_NUMBER, text):
    _fail(line_no, token, "expected a number")
  value = float(text)
  if not 0 < value <= 1:
    _fail(line_no, token, f"ratio {value} is outside (0, 1]")
  return value


def parse_block(text: str, line_no: Optional[int] = None) -> BlockSpec:
  """Parses one block string into a `BlockSpec`.

  Args:
    text: e.g. `r1_k5_s22_e6_i40_o80_se0.25_nonlocal0.25-2`.
    line_no: 1-based line number used in error messages.

  Raises:
    ValueError: naming the line and the offending token.
  """
  text = text.strip()
  if not text:
    _fail(line_no, text, "empty block string")
  fields = {}
  flags = set()
  for token in text.split("_"):
    if token in ("noskip", "sw"):
      if token in flags:
        _fail(line_no, token, "given twice")
      flags.add(token)
      continue
    if token.startswith("nonlocal"):
      key, value = "nonlocal", token[len("nonlocal"):]
    elif token.startswith("se"):
      key, value = "se", token[2:]
    else:
      m = re.fullmatch(r"([a-z]+)(.*)", token)
      key, value = (m.group(1), m.group(2)) if m else (token, "")
      if key not in ("r", "k", "a", "p", "s", "e", "i", "o"):
        _fail(line_no, token, "unknown token (expected r, k, a, p, s, e, i, o, se, "
              "noskip, sw or nonlocal)")
    if key in fields:
      _fail(line_no, token, f"'{key}' given twice")
    fields[key] = (value, token)

  for required in ("r", "k", "s", "e", "i", "o"):
    if required not in fields:
      _fail(line_no, text, f"missing the '{required}' token")

  def get(key):
    return fields[key]

  repeats = _positive_int(*get("r"), line_no)
  kernels = _kernel_list(*get("k"), line_no)
  s_value, s_token = get("s")
  if not re.fullmatch(r"\d\d", s_value):
    _fail(line_no, s_token, "strides must be exactly two digits, e.g. s22")
  strides = (int(s_value[0]), int(s_value[1]))
  if min(strides) <= 0:
    _fail(line_no, s_token, "strides must be positive")
  expand = _positive_int(*get("e"), line_no)
  in_f = _positive_int(*get("i"), line_no)
  out_f = _positive_int(*get("o"), line_no)
  se_ratio = _ratio(*get("se"), line_no) if "se" in fields else 0.0
  a = _kernel_list(*get("a"), line_no) if "a" in fields else (1,)
  p = _kernel_list(*get("p"), line_no) if "p" in fields else (1,)
  nl_ratio, nl_stride = 0.0, 1
  if "nonlocal" in fields:
    value, token = get("nonlocal")
    if value == "":
      nl_ratio = 1.0
    else:
      m = re.fullmatch(_NUMBER + r"(?:-(.*))?", value)
      if not m:
        _fail(line_no, token, "expected nonlocal<ratio>[-<stride>], e.g. nonlocal0.25-2")
      nl_ratio = _ratio(m.group(1), token, line_no)
      if m.group(2) is not None:
        nl_stride = _positive_int(m.group(2), token, line_no)
  return BlockSpec(
      repeats=repeats, kernel_sizes=kernels, strides=strides,
      expand_ratio=expand, in_filters=in_f, out_filters=out_f,
      se_ratio=se_ratio, id_skip="noskip" not in flags, swish="sw" in flags,
      expand_kernel_sizes=a, project_kernel_sizes=p,
      nl_ratio=nl_ratio, nl_stride=nl_stride)


def _parse_directive(line: str, line_no: int) -> dict:
  settings = {}
  for token in line[len(_DIRECTIVE):].split():
    m = re.fullmatch(r"(stem_stride|stem_filters|head_filters|activation|nl_norm)=(\S+)",
                     token)
    if not m:
      _fail(line_no, token, "unknown directive (expected stem_stride=, "
            "stem_filters=, head_filters=, activation= or nl_norm=)")
    names = {"activation": ACTIVATIONS, "nl_norm": NL_NORMS}.get(m.group(1))
    if names is not None:
      if m.group(2) not in names:
        _fail(line_no, token, f"unknown {m.group(1)} (expected {', '.join(names)})")
      settings[m.group(1)] = m.group(2)
      continue
    settings[m.group(1)] = _positive_int(m.group(2), token, line_no)
  if settings.get("stem_stride", 2) not in (1, 2):
    _fail(line_no, f"stem_stride={settings['stem_stride']}", "must be 1 or 2")
  return settings


def _check_chain(blocks: Sequence[BlockSpec], line_nos: Sequence[int]):
  for prev, cur, line_no in zip(blocks, blocks[1:], line_nos[1:]):
    if cur.in_filters != prev.out_filters:
      _fail(line_no, f"i{cur.in_filters}",
            f"input channels do not match the previous block's output o{prev.out_filters}")


def parse_arch(text: str, limits: Optional[ArchLimits] = None) -> Arch:
  """Parses the contents of an arch file (one block per line).

  Raises:
    ValueError: a malformed line, naming it and its token.
    ArchLimitError: an arch above `limits` (default `ArchLimits()`).
  """
  blocks, line_nos, settings = [], [], {}
  for line_no, line in enumerate(text.splitlines(), start=1):
    line = line.strip()
    if line.startswith(_DIRECTIVE):
      settings.update(_parse_directive(line, line_no))
      continue
    if not line or line.startswith("#"):
      continue
    blocks.append(parse_block(line, line_no))
    line_nos.append(line_no)
  if not blocks:
    raise ValueError("the arch has no block lines")
  _check_chain(blocks, line_nos)
  arch = Arch(blocks=tuple(blocks), **settings)
  check_limits(arch, limits, line_nos)
  return arch


def format_arch(arch: Arch) -> str:
  """Writes an `Arch` as arch-file text; `parse_arch(format_arch(a)) == a`."""
  lines = []
  extras = []
  if arch.stem_stride != 2:
    extras.append(f"stem_stride={arch.stem_stride}")
  if arch.blocks and arch.stem_filters != arch.blocks[0].in_filters:
    extras.append(f"stem_filters={arch.stem_filters}")
  if arch.head_filters != 1280:
    extras.append(f"head_filters={arch.head_filters}")
  if arch.activation != "swish":
    extras.append(f"activation={arch.activation}")
  if arch.nl_norm != "none":
    extras.append(f"nl_norm={arch.nl_norm}")
  if extras:
    lines.append(" ".join([_DIRECTIVE] + extras))
  lines += [format_block(b) for b in arch.blocks]
  return "\n".join(lines) + "\n"


def expand_blocks(arch: Arch) -> Tuple[BlockSpec, ...]:
  """Expands repeats: one `BlockSpec` with `repeats == 1` per built block."""
  out = []
  for spec in arch.blocks:
    out.append(dataclasses.replace(spec, repeats=1))
    for _ in range(spec.repeats - 1):
      out.append(dataclasses.replace(spec, repeats=1, strides=(1, 1),
                                     in_filters=spec.out_filters))
  return tuple(out)
