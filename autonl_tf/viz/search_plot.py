"""`read_search_log` / `plot_search`: the `search_log.csv` that
`autonl_tf.search.callbacks.DecisionLog` appends after every epoch, drawn as
MACs (with the budget of a target-mode search), accuracy, loss, lambda and a
heat-map of every architecture gate over the epochs."""

import csv
import math
import os
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from autonl_tf import io
from autonl_tf import run_files
from autonl_tf.viz import figures

# What `search.callbacks.DecisionLog` writes (see its `on_epoch_end`): the file name,
# `epoch` (1-based), `derived_macs` (exact MACs of the hard architecture),
# the epoch-mean Keras logs (`accuracy`, `ce`, `lambda`, `loss`, `macs`),
# `lambda_now` (lambda at the end of the epoch) and one `<block>/<decision>`
# column per gate (e.g. `sblock_3/e_small`), valued 0.0 or 1.0.
LOG_FILE = run_files.SEARCH_LOG
STEP_COLUMN = "epoch"
MAC_COLUMN = "derived_macs"
DECISION_SEPARATOR = "/"
_CONFIG_FILE = run_files.SEARCH_CONFIG  # written by `runner.search` next to the log


class SearchLog(dict):
  """Column name -> numpy array (float64, one value per logged epoch, sorted
  by epoch), in the file's column order.

  Attributes:
    path: the CSV read.
    decision_columns: the `<block>/<decision>` gate columns, in file order.
    target_macs: the MAC budget of a target-mode search (from the
      `search_config.json` next to the log), else None.
    supernet_warmup_epochs: the search's supernet warm-up epochs from the
      same file, else None.
  """

  def __init__(self, columns: Dict[str, np.ndarray], path: str, decision_columns: List[str],
               target_macs: Optional[float] = None,
               supernet_warmup_epochs: Optional[int] = None):
    super().__init__(columns)
    self.path = path
    self.decision_columns = list(decision_columns)
    self.target_macs = target_macs
    self.supernet_warmup_epochs = supernet_warmup_epochs


def _float(text: str) -> float:
  text = text.strip()
  if not text:
    return math.nan
  try:
    return float(text)
  except ValueError:
    return math.nan


def _read_config(directory: str) -> Tuple[Optional[float], Optional[int]]:
  """(target_macs, supernet_warmup_epochs) of the search that wrote the log
  (a file of either field naming, `run_files.saved_fields`); the config
  is optional decoration, so an unreadable one is ignored."""
  try:
    config = io.read_json(os.path.join(directory, _CONFIG_FILE))
  except (OSError, ValueError):
    return None, None
  if not isinstance(config, dict):
    return None, None
  config = run_files.saved_fields(_CONFIG_FILE, config)
  target = config.get("target_macs") if config.get("cost", "target") == "target" else None
  warm = config.get("supernet_warmup_epochs")
  target = float(target) if isinstance(target, (int, float)) and target > 0 else None
  warm = int(warm) if isinstance(warm, (int, float)) and warm > 0 else None
  return target, warm


def read_search_log(path: Union[str, os.PathLike]) -> SearchLog:
  """Reads a `search_log.csv` written by `search.callbacks.DecisionLog`.

  Args:
    path: the CSV, or the search's model directory holding it.

  Returns:
    A `SearchLog` (a dict of column -> numpy array, plus `decision_columns`,
    `target_macs`, `supernet_warmup_epochs` and `path`). Rows are sorted by
    epoch; when an epoch was logged twice (a rerun appending to the same
    file) the last row wins.

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
                     f"is it a {LOG_FILE} of tools/search.py?")
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
  warm = getattr(log, "supernet_warmup_epochs", None)
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
      ax.axhline(target_macs * scale, color=figures.STRIDE_COLOUR, ls="--", lw=1,
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
  return figures.save(fig, path), decisions
