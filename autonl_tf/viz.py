"""Pictures of architectures and of search runs (issue: pipeline).

* `plot_arch`: a network as a row of blocks, in the style of the AutoNL
  paper's figures: box height = depthwise kernel size, colour = expand ratio,
  LightNL blocks drawn above the block they follow ("NL 1/4 s2"), SE and
  stride-2 blocks marked, output channels and the feature resolution of every
  stage written under the row.
* `read_search_log` / `plot_search`: the `search_log.csv` that
  `autonl_tf.search.runner.DecisionLog` appends after every epoch, drawn as
  MACs (with the budget of a target-mode search), accuracy, loss, lambda and
  a heat-map of every architecture gate over the epochs.
* `plot_accuracy_vs_macs`: a study's networks as test accuracy against MACs,
  one colour per group (benchmarks/search_vs_random.py).

Pure Python + numpy + matplotlib (no TensorFlow, no pyplot: figures are
`matplotlib.figure.Figure` objects rendered with Agg, so importing this module
never changes the caller's matplotlib backend).
"""

import csv
import fractions
import math
import os
import struct
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from matplotlib import patches
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from autonl_tf import flops
from autonl_tf import io
from autonl_tf import run_files
from autonl_tf.arch import codec
from autonl_tf.arch import presets

__all__ = ["plot_arch", "read_search_log", "plot_search", "plot_accuracy_vs_macs", "off_scale_floor",
           "SearchLog", "png_size", "LOG_FILE", "STEP_COLUMN", "MAC_COLUMN", "DECISION_SEPARATOR"]

# What `runner.DecisionLog` writes (see its `on_epoch_end`): the file name,
# `epoch` (1-based), `derived_macs` (exact MACs of the hard architecture),
# the epoch-mean Keras logs (`accuracy`, `ce`, `lambda`, `loss`, `macs`),
# `lambda_now` (lambda at the end of the epoch) and one `<block>/<decision>`
# column per gate (e.g. `sblock_3/e_small`), valued 0.0 or 1.0.
LOG_FILE = run_files.SEARCH_LOG
STEP_COLUMN = "epoch"
MAC_COLUMN = "derived_macs"
DECISION_SEPARATOR = "/"
_CONFIG_FILE = run_files.SEARCH_CONFIG  # written by `runner.search` next to the log

DPI = 150

_EXPAND_COLOURS = {1: "#c6dbef", 3: "#fee391", 6: "#fd8d3c"}
_EXTRA_COLOURS = ["#a1d99b", "#bcbddc", "#fc9272", "#9ecae1", "#d9d9d9", "#fdd0a2"]
_NL_COLOUR = "#8c6bb1"
_SE_COLOUR = "#238b45"
_STRIDE_COLOUR = "#cb181d"
_FIXED_COLOUR = "#e0e0e0"


# ------------------------------------------------------------------ helpers --
def _save(fig: Figure, path: Union[str, os.PathLike]) -> str:
  """Renders with Agg and writes the PNG atomically (a reader never sees a
  half-written file, e.g. while a search keeps refreshing its pictures)."""
  path = os.fspath(path)
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)
  FigureCanvasAgg(fig)
  with io.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=DPI, format="png")
  return path


def png_size(path: Union[str, os.PathLike]) -> Tuple[int, int]:
  """(width, height) in pixels from a PNG's header.

  Raises:
    ValueError: the file is not a PNG.
  """
  with open(path, "rb") as f:
    head = f.read(24)
  if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
    raise ValueError(f"{os.fspath(path)} is not a PNG file")
  return struct.unpack(">II", head[16:24])


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


# ---------------------------------------------------------------- plot_arch --
def plot_arch(arch: Union[codec.Arch, str, os.PathLike], input_size: Union[int, Sequence[int]],
              path: Union[str, os.PathLike], title: Optional[str] = None,
              num_classes: int = 1000) -> str:
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
      edge=_STRIDE_COLOUR if arch.stem_stride > 1 else "#333333")
  head_h = 1.25
  box(n + 1, head_h, _FIXED_COLOUR, "Conv 1x1, Pool, FC")

  row_c, row_s = -0.78, -0.98
  ax.text(-0.55, row_c, "channels", ha="right", va="center", fontsize=7, color="#444444")
  ax.text(-0.55, row_s, "stride", ha="right", va="center", fontsize=7, color="#444444")
  ax.text(0, row_c, str(arch.stem_filters), ha="center", va="center", fontsize=6.5)
  if arch.stem_stride > 1:
    ax.text(0, row_s, f"s{arch.stem_stride}", ha="center", va="center", fontsize=6.5,
            color=_STRIDE_COLOUR, fontweight="bold")
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
        edge=_STRIDE_COLOUR if stride > 1 else "#333333", lw=2.2 if stride > 1 else 0.8)
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
      ax.text(x, row_s, st, ha="center", va="center", fontsize=6.5, color=_STRIDE_COLOUR,
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
      patches.Patch(facecolor="white", edgecolor=_STRIDE_COLOUR, linewidth=2, label="stride 2"),
      patches.Patch(facecolor="none", edgecolor="none",
                    label="box height: kernel 3 < 5 < 7"),
  ]
  fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=7.5,
             frameon=False, bbox_to_anchor=(0.5, 0.0))
  return _save(fig, path)


# ---------------------------------------------------------- read_search_log --
class SearchLog(dict):
  """Column name -> numpy array (float64, one value per logged epoch, sorted
  by epoch), in the file's column order.

  Attributes:
    path: the CSV read.
    decision_columns: the `<block>/<decision>` gate columns, in file order.
    target_macs: the MAC budget of a target-mode search (from the
      `search_config.json` next to the log), else None.
    warmup_epochs: warm-up epochs from the same file, else None.
  """

  def __init__(self, columns: Dict[str, np.ndarray], path: str, decision_columns: List[str],
               target_macs: Optional[float] = None, warmup_epochs: Optional[int] = None):
    super().__init__(columns)
    self.path = path
    self.decision_columns = list(decision_columns)
    self.target_macs = target_macs
    self.warmup_epochs = warmup_epochs


def _float(text: str) -> float:
  text = text.strip()
  if not text:
    return math.nan
  try:
    return float(text)
  except ValueError:
    return math.nan


def _read_config(directory: str) -> Tuple[Optional[float], Optional[int]]:
  """(target_macs, warmup_epochs) of the search that wrote the log; the
  config is optional decoration, so an unreadable one is ignored."""
  try:
    config = io.read_json(os.path.join(directory, _CONFIG_FILE))
  except (OSError, ValueError):
    return None, None
  if not isinstance(config, dict):
    return None, None
  target = config.get("target_macs") if config.get("cost", "target") == "target" else None
  warm = config.get("warmup_epochs")
  target = float(target) if isinstance(target, (int, float)) and target > 0 else None
  warm = int(warm) if isinstance(warm, (int, float)) and warm > 0 else None
  return target, warm


def read_search_log(path: Union[str, os.PathLike]) -> SearchLog:
  """Reads a `search_log.csv` written by `runner.DecisionLog`.

  Args:
    path: the CSV, or the search's model directory holding it.

  Returns:
    A `SearchLog` (a dict of column -> numpy array, plus `decision_columns`,
    `target_macs`, `warmup_epochs` and `path`). Rows are sorted by epoch; when
    an epoch was logged twice (a rerun appending to the same file) the last
    row wins.

  Raises:
    ValueError: naming the file, when it is missing, empty, has no rows,
      lacks the `epoch` or `derived_macs` column, or has a row with the wrong
      number of fields.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    path = os.path.join(path, LOG_FILE)
  if not os.path.exists(path):
    raise ValueError(f"search log '{path}' does not exist")
  try:
    with open(path, "r", newline="", encoding="utf-8") as f:
      rows = [r for r in csv.reader(f) if r]
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise ValueError(f"cannot read search log '{path}': {e}") from None
  if not rows:
    raise ValueError(f"search log '{path}' is empty")
  header, body = [c.strip() for c in rows[0]], rows[1:]
  missing = [c for c in (STEP_COLUMN, MAC_COLUMN) if c not in header]
  if missing:
    raise ValueError(f"search log '{path}' lacks the column(s) {', '.join(missing)} "
                     f"(has: {', '.join(header[:8])}{', ...' if len(header) > 8 else ''}); "
                     "is it a search_log.csv of tools/search.py?")
  if len(set(header)) != len(header):
    raise ValueError(f"search log '{path}' has duplicate column names")
  if not body:
    raise ValueError(f"search log '{path}' has a header but no rows")
  for line_no, row in enumerate(body, start=2):
    if len(row) != len(header):
      raise ValueError(f"search log '{path}', row {line_no}: {len(row)} fields, the header has "
                       f"{len(header)} (was the file appended to by a different search?)")
  values = np.array([[_float(v) for v in row] for row in body], dtype=np.float64)
  steps = values[:, header.index(STEP_COLUMN)]
  if np.isnan(steps).any():
    raise ValueError(f"search log '{path}': non-numeric '{STEP_COLUMN}' values")
  last = {}
  for i, s in enumerate(steps):
    last[s] = i  # the last row of an epoch logged twice wins
  order = [last[s] for s in sorted(last)]
  values = values[order]
  columns = {c: values[:, j] for j, c in enumerate(header)}
  decisions = [c for c in header if DECISION_SEPARATOR in c]
  target, warm = _read_config(os.path.dirname(os.path.abspath(path)))
  return SearchLog(columns, path, decisions, target, warm)


# -------------------------------------------------------------- plot_search --
def _split_decision(column: str) -> Tuple[str, str]:
  block, _, decision = column.partition(DECISION_SEPARATOR)
  return block, decision


def _epoch_ticks(ax, x: np.ndarray):
  """Every epoch as a tick for short logs, else whole-number ticks."""
  if len(x) <= 20:
    ax.set_xticks(x)
    ax.set_xticklabels([f"{v:g}" for v in x])
  else:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_search(log: Union[SearchLog, Dict[str, np.ndarray], str, os.PathLike],
                path: Union[str, os.PathLike], target_macs: Optional[float] = None,
                title: Optional[str] = None) -> Tuple[str, List[str]]:
  """Draws a search's trajectory over epochs and saves a PNG.

  Left, stacked: MACs (the derived hard architecture's exact count and the
  supernet's epoch mean, with the budget as a dashed line when known),
  accuracy, loss (`ce`, `loss`) and lambda (epoch mean and end-of-epoch
  value), each only when the log has it; warm-up epochs are shaded. Right: a
  heat-map of every decision gate (one row per `<block>/<decision>` column,
  blocks separated by lines) over the epochs.

  Args:
    log: a `SearchLog`, a dict of column -> values with `epoch` and
      `derived_macs`, or a path for `read_search_log`.
    path: the PNG to write.
    target_macs: the budget line; default `log.target_macs`.
    title: figure title (default: the log's directory).

  Returns:
    (path, the decision columns drawn, in heat-map row order).
  """
  if isinstance(log, (str, os.PathLike)):
    log = read_search_log(log)
  for c in (STEP_COLUMN, MAC_COLUMN):
    if c not in log:
      raise ValueError(f"search log lacks the '{c}' column")
  decisions = list(getattr(log, "decision_columns", None) or
                   [c for c in log if DECISION_SEPARATOR in c])
  if target_macs is None:
    target_macs = getattr(log, "target_macs", None)
  warm = getattr(log, "warmup_epochs", None)
  if title is None:
    src = getattr(log, "path", None)
    title = f"search: {os.path.dirname(os.path.abspath(src))}" if src else "search"
  x = np.asarray(log[STEP_COLUMN], dtype=np.float64)

  panels = [("MACs (M)", [(MAC_COLUMN, "derived (exact)"), ("macs", "supernet, epoch mean")], 1e-6)]
  panels.append(("accuracy", [("accuracy", "train accuracy")], 1.0))
  panels.append(("loss", [("ce", "cross-entropy"), ("loss", "total loss")], 1.0))
  panels.append(("lambda", [("lambda", "epoch mean"), ("lambda_now", "end of epoch")], 1.0))
  panels = [(name, [(c, l) for c, l in series if c in log], scale)
            for name, series, scale in panels]
  panels = [p for p in panels if p[1]]

  n_dec = len(decisions)
  fig_h = max(7.0, 1.6 * len(panels) + 1.2, 0.105 * n_dec + 1.6)
  fig = Figure(figsize=(13.0 if n_dec else 7.5, fig_h))
  grid = fig.add_gridspec(len(panels), 2 if n_dec else 1,
                          width_ratios=(1.0, 1.05) if n_dec else None,
                          left=0.07, right=0.97 if n_dec else 0.95, top=1 - 0.75 / fig_h,
                          bottom=0.55 / fig_h + 0.02, hspace=0.35, wspace=0.32)
  first_ax = None
  for row, (name, series, scale) in enumerate(panels):
    ax = fig.add_subplot(grid[row, 0], sharex=first_ax)
    first_ax = first_ax or ax
    for column, label in series:
      ax.plot(x, np.asarray(log[column], dtype=np.float64) * scale, marker="o", ms=3, lw=1.2,
              label=label)
    if name.startswith("MACs") and target_macs:
      ax.axhline(target_macs * scale, color=_STRIDE_COLOUR, ls="--", lw=1,
                 label=f"target {target_macs / 1e6:.1f}M")
    if name == "lambda":
      ax.axhline(0.0, color="#999999", lw=0.6)
    if warm:
      ax.axvspan(x.min() - 0.5, warm + 0.5, color="#eeeeee", zorder=0,
                 label="warm-up" if row == 0 else None)
    ax.set_ylabel(name, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    if row < len(panels) - 1:
      ax.tick_params(labelbottom=False)
    else:
      ax.set_xlabel("epoch", fontsize=9)
  lo, hi = x.min() - 0.5, x.max() + 0.5  # whole epochs, aligned with the heat-map cells
  if first_ax is not None:
    first_ax.set_xlim(lo, hi)
    _epoch_ticks(first_ax, x)

  if n_dec:
    ax = fig.add_subplot(grid[:, 1])
    gates = np.array([np.asarray(log[c], dtype=np.float64) for c in decisions])
    image = ax.imshow(np.ma.masked_invalid(gates), aspect="auto", interpolation="nearest",
                      cmap="Blues", vmin=0.0, vmax=1.0, extent=(lo, hi, n_dec - 0.5, -0.5))
    ax.set_yticks(range(n_dec))
    ax.set_yticklabels(decisions, fontsize=max(4.5, min(8.0, 70.0 / max(n_dec, 1) + 4)))
    blocks = [_split_decision(c)[0] for c in decisions]
    for i in range(1, n_dec):
      if blocks[i] != blocks[i - 1]:
        ax.axhline(i - 0.5, color="#fd8d3c", lw=1.0)
    ax.set_xlabel("epoch", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    _epoch_ticks(ax, x)
    ax.set_title(f"decision gates ({n_dec}, 1 = taken)", fontsize=9)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, ticks=[0, 1])
    bar.ax.tick_params(labelsize=7)
  fig.suptitle(title, fontsize=10)
  return _save(fig, path), decisions


# --------------------------------------------------------- study scatter --
_GROUP_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#7f7f7f"]


def off_scale_floor(values: Sequence[float]) -> Optional[float]:
  """The value below which points are drawn off scale, or None.

  A point far below the rest (e.g. a baseline at 46% beside networks at
  87-89%) would squash the rest into one line: when the widest gap between
  consecutive sorted values is more than twice the spread of the values above
  it, and those are more than half of all, the axis covers those alone and
  the points below the gap are marked at its lower edge. Returns the lowest
  value kept on scale."""
  v = sorted(float(x) for x in values)
  if len(v) < 3:
    return None
  gaps = np.diff(v)
  i = int(np.argmax(gaps))
  above = v[i + 1:]
  if len(above) * 2 <= len(v) or gaps[i] <= 2 * (above[-1] - above[0]):
    return None
  return above[0]


def plot_accuracy_vs_macs(points: Sequence[Tuple[str, float, float]],
                          path: Union[str, os.PathLike], title: str = "",
                          budget: Optional[float] = None, xlabel: str = "MACs (M)",
                          xscale: float = 1e-6) -> str:
  """Test accuracy against MACs (or another cost: `xlabel`, `xscale`), one
  colour per group, each group's mean as a horizontal tick, and the budget
  as a dashed line; saves a PNG.
  Points far below the rest (`off_scale_floor`) are drawn as triangles on
  the lower edge with their value written, so that the rest stay readable.

  Args:
    points: (group, MACs, top-1 %) per network, groups in legend order.
    path: the PNG to write.
    title: figure title.
    budget: MACs of the budget line (None: none).
    xlabel: the x axis' label.
    xscale: the factor from a point's cost to the x axis (MACs to millions).
  """
  groups = list(dict.fromkeys(g for g, _, _ in points))
  floor = off_scale_floor([a for _, _, a in points])
  lowest = -np.inf if floor is None else floor  # points below are drawn off scale
  on_scale = [a for _, _, a in points if a >= lowest]
  pad = max(0.5, 0.15 * (max(on_scale) - min(on_scale))) if on_scale else 1.0
  bottom = min(on_scale) - pad if on_scale else 0.0
  marker_y = bottom + 0.12 * pad  # off-scale points, on the lower edge
  middle = np.mean([m for _, m, _ in points]) * xscale if points else 0.0
  tick = 0.0125 * max(m for _, m, _ in points) * xscale if points else 0.0  # a mean's half-width
  fig = Figure(figsize=(9.5, 4.8))
  ax = fig.add_subplot(1, 1, 1)
  fig.subplots_adjust(left=0.08, right=0.7)  # the legend to the right, off the points
  for i, group in enumerate(groups):
    mine = [(m, a) for g, m, a in points if g == group]
    macs = np.array([m for m, _ in mine]) * xscale
    acc = np.array([a for _, a in mine])
    colour = _GROUP_COLOURS[i % len(_GROUP_COLOURS)]
    label = f"{group} (n={len(mine)}, mean {acc.mean():.2f})"
    low = acc < lowest
    if (~low).any():
      ax.scatter(macs[~low], acc[~low], s=36, color=colour, edgecolor="#333333", linewidth=0.5,
                 zorder=3, label=label)
      label = None
    if low.any():
      ax.scatter(macs[low], np.full(int(low.sum()), marker_y), s=60, marker="v", color=colour,
                 edgecolor="#333333", linewidth=0.5, zorder=3, label=label)
      for m, a in zip(macs[low], acc[low]):
        right = m > middle  # the label toward the middle, inside the axes
        ax.annotate(f"{group} {a:.2f}% (off scale)", (m, marker_y),
                    xytext=(-8 if right else 8, 4), textcoords="offset points",
                    ha="right" if right else "left", fontsize=8, color=colour)
    if acc.mean() >= lowest:
      ax.hlines(acc.mean(), macs.min() - tick, macs.max() + tick, color=colour, lw=1.2, zorder=2)
  if budget:
    ax.axvline(budget * xscale, color="#999999", ls="--", lw=1,
               label=f"budget {budget * xscale:.2f}{'M' if xscale == 1e-6 else ''}")
  if floor is not None:
    ax.set_ylim(bottom, max(on_scale) + pad)
  ax.set_xlabel(xlabel)
  ax.set_ylabel("test top-1 (%)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
  if title:
    ax.set_title(title, fontsize=10)
  return _save(fig, path)
