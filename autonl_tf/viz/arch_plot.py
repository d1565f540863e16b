"""`plot_arch`: a network as a row of blocks, in the style of the AutoNL
paper's figures: box height = depthwise kernel size, colour = expand ratio,
LightNL blocks drawn above the block they follow ("NL 1/4 s2"), SE and
stride-2 blocks marked, output channels and the feature resolution of every
stage written under the row."""

import fractions
import os
from typing import List, Optional, Sequence, Tuple, Union

from matplotlib import patches
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from autonl_tf import constants
from autonl_tf import flops
from autonl_tf.arch import codec
from autonl_tf.arch import presets
from autonl_tf.viz import figures

_EXPAND_COLOURS = {1: "#c6dbef", 3: "#fee391", 6: "#fd8d3c"}
_EXTRA_COLOURS = ["#a1d99b", "#bcbddc", "#fc9272", "#9ecae1", "#d9d9d9", "#fdd0a2"]
_NL_COLOUR = "#8c6bb1"
_SE_COLOUR = "#238b45"
_FIXED_COLOUR = "#e0e0e0"


def _ratio_text(ratio: float) -> str:
  """0.25 -> '1/4', 0.125 -> '1/8', 1.0 -> '1', 0.3 -> '3/10'."""
  f = fractions.Fraction(ratio).limit_denominator(64)
  return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def _expand_colour(ratio: int, seen: Sequence[int]) -> str:
  if ratio in _EXPAND_COLOURS:
    return _EXPAND_COLOURS[ratio]
  others = sorted(r for r in set(seen) if r not in _EXPAND_COLOURS)
  return _EXTRA_COLOURS[others.index(ratio) % len(_EXTRA_COLOURS)]


def _box_height(kernel: int) -> float:
  """Box height grows with the depthwise kernel: 3 -> 0.66, 5 -> 0.82, 7 -> 0.98."""
  return min(1.3, 0.42 + 0.08 * kernel)


def _resolution_groups(sizes: Sequence[Tuple[int, int]]) -> List[Tuple[int, int, Tuple[int, int]]]:
  """Runs of equal sizes as (first index, last index, size)."""
  groups = []
  for i, s in enumerate(sizes):
    if groups and groups[-1][2] == s:
      groups[-1] = (groups[-1][0], i, s)
    else:
      groups.append((i, i, s))
  return groups


def plot_arch(arch: Union[codec.Arch, str, os.PathLike], input_size: Union[int, Sequence[int]],
              path: Union[str, os.PathLike], title: Optional[str] = None,
              num_classes: int = constants.NUM_CLASSES) -> str:
  """Draws `arch` as a row of blocks and saves a PNG.

  One box per built block (repeats expanded), between a stem and a head box.
  Box height encodes the depthwise kernel size, colour the expand ratio; a
  purple box above a block is the LightNL that follows it (channel ratio and
  stride, e.g. "NL 1/4 s2"); a green dot marks SE, a thick red border and
  "s2" a stride-2 block. Under the row: output channels, and brackets with
  the feature resolution of each stage (from the stem stride and the block
  strides, as `flops.count` computes them). The title gives the exact MACs
  and parameters of `flops.count`.

  Args:
    arch: an `Arch`, a preset name or an arch file path (`arch.load`).
    input_size: image size, an int or (height, width).
    path: the PNG to write (parent directories are created).
    title: first title line (default: the preset name / file name).
    num_classes: classifier width (for the MAC and parameter counts).

  Returns:
    `path`.
  """
  name = title
  if name is None:
    name = os.path.basename(os.fspath(arch)) if isinstance(arch, (str, os.PathLike)) \
        else "architecture"
  arch = presets.load(arch)
  count = flops.count(arch, input_size, num_classes)
  blocks = count.blocks
  n = len(blocks)
  h_in, w_in = count.input_size
  stem_size = (flops.same_out_size(h_in, arch.stem_stride),
               flops.same_out_size(w_in, arch.stem_stride))

  fig_w = max(7.5, 0.5 * (n + 2) + 2.2)
  fig = Figure(figsize=(fig_w, 4.3))
  ax = fig.add_axes((0.01, 0.13, 0.98, 0.73))
  ax.set_axis_off()
  ax.set_xlim(-1.5, n + 1.6)
  ax.set_ylim(-1.55, 1.72)
  width = 0.8
  ratios = [b.spec.expand_ratio for b in blocks]
  text_kw = dict(ha="center", va="center", fontsize=7, rotation=90)

  # The data path behind the boxes.
  ax.plot([0, n + 1], [0, 0], color="#555555", lw=0.8, zorder=0)

  def box(x, height, colour, label, edge="#333333", lw=0.8, y0=None):
    y0 = -height / 2 if y0 is None else y0
    ax.add_patch(patches.FancyBboxPatch(
        (x - width / 2, y0), width, height, boxstyle="round,pad=0,rounding_size=0.06",
        facecolor=colour, edgecolor=edge, linewidth=lw, zorder=2))
    ax.text(x, y0 + height / 2, label, zorder=3, **text_kw)

  stem_h = _box_height(7)
  box(0, stem_h, _FIXED_COLOUR, f"Conv 3x3 s{arch.stem_stride}",
      lw=2.2 if arch.stem_stride > 1 else 0.8,
      edge=figures.STRIDE_COLOUR if arch.stem_stride > 1 else "#333333")
  head_h = 1.25
  box(n + 1, head_h, _FIXED_COLOUR, "Conv 1x1, Pool, FC")

  row_c, row_s = -0.78, -0.98
  ax.text(-0.55, row_c, "channels", ha="right", va="center", fontsize=7, color="#444444")
  ax.text(-0.55, row_s, "stride", ha="right", va="center", fontsize=7, color="#444444")
  ax.text(0, row_c, str(arch.stem_filters), ha="center", va="center", fontsize=6.5)
  if arch.stem_stride > 1:
    ax.text(0, row_s, f"s{arch.stem_stride}", ha="center", va="center", fontsize=6.5,
            color=figures.STRIDE_COLOUR, fontweight="bold")
  ax.text(n + 1, row_c, str(arch.head_filters), ha="center", va="center", fontsize=6.5)

  num_nl = 0
  for i, b in enumerate(blocks):
    x = i + 1
    s = b.spec
    kernel = "x".join([".".join(str(k) for k in s.kernel_sizes)] * 2) \
        if len(s.kernel_sizes) == 1 else ".".join(str(k) for k in s.kernel_sizes)
    height = _box_height(max(s.kernel_sizes))
    stride = max(s.strides)
    label = f"MB{s.expand_ratio} {kernel}"
    box(x, height, _expand_colour(s.expand_ratio, ratios), label,
        edge=figures.STRIDE_COLOUR if stride > 1 else "#333333", lw=2.2 if stride > 1 else 0.8)
    if s.has_se:
      ax.plot([x + width / 2 - 0.14], [height / 2 - 0.12], "o", color=_SE_COLOUR, ms=4, zorder=4)
    if s.has_nonlocal:
      num_nl += 1
      y0 = 0.72
      ax.plot([x, x], [height / 2, y0], color=_NL_COLOUR, lw=1.0, zorder=1)
      box(x, 0.95, _NL_COLOUR, f"NL {_ratio_text(s.nl_ratio)} s{s.nl_stride}", edge=_NL_COLOUR,
          y0=y0)
      ax.texts[-1].set_color("white")
    ax.text(x, row_c, str(s.out_filters), ha="center", va="center", fontsize=6.5)
    if stride > 1:
      st = f"s{stride}" if s.strides[0] == s.strides[1] else f"s{s.strides[0]}{s.strides[1]}"
      ax.text(x, row_s, st, ha="center", va="center", fontsize=6.5, color=figures.STRIDE_COLOUR,
              fontweight="bold")

  # Resolution brackets: stem, blocks and the head conv (which runs at the
  # last block's resolution) grouped by feature-map size.
  sizes = [stem_size] + [b.out_size for b in blocks] + [blocks[-1].out_size]
  y_br = -1.22
  ax.text(-0.55, y_br - 0.2, "resolution", ha="right", va="center", fontsize=7, color="#444444")
  for first, last, (h, w) in _resolution_groups(sizes):
    x0, x1 = first - width / 2 + 0.02, last + width / 2 - 0.02
    ax.plot([x0, x0, x1, x1], [y_br + 0.08, y_br, y_br, y_br + 0.08], color="#444444", lw=0.9)
    ax.text((x0 + x1) / 2, y_br - 0.2, f"{h}x{w}", ha="center", va="center", fontsize=7.5)

  macs_line = (f"input {h_in}x{w_in}  |  {count.macs / 1e6:.1f}M MACs  |  "
               f"{count.params / 1e6:.2f}M params  |  {n} blocks, {num_nl} with LightNL")
  fig.suptitle(f"{name}\n{macs_line}", fontsize=10, y=0.97)

  shown = sorted(set(ratios) | set(_EXPAND_COLOURS))
  handles = [patches.Patch(facecolor=_expand_colour(r, ratios), edgecolor="#333333",
                           label=f"expand {r}") for r in shown]
  handles += [
      patches.Patch(facecolor=_NL_COLOUR, label="LightNL (ratio, stride)"),
      Line2D([], [], marker="o", color=_SE_COLOUR, lw=0, ms=5, label="SE"),
      patches.Patch(facecolor="white", edgecolor=figures.STRIDE_COLOUR, linewidth=2, label="stride 2"),
      patches.Patch(facecolor="none", edgecolor="none",
                    label="box height: kernel 3 < 5 < 7"),
  ]
  fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=7.5,
             frameon=False, bbox_to_anchor=(0.5, 0.0))
  return figures.save(fig, path)
