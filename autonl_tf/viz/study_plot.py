"""`plot_accuracy_vs_macs`: a study's networks as test accuracy against MACs
(or another cost), one colour per group (benchmarks/search_vs_random.py,
benchmarks/reference_table.py)."""

import os
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from matplotlib.figure import Figure

from autonl_tf.viz import figures

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
  return figures.save(fig, path)
