"""The latency table file: every piece of a network or search space timed
as its own tiny TFLite model on this machine (`timing`), keyed by its
`Piece` (FBNet / ProxylessNAS-style tables, built for the user's own
hardware), and a prediction for any network made of those pieces.

The table holds `overhead`, the time of invoking a model that does almost
nothing; every entry includes it once, a whole network only once, so

  predicted(arch) = scale * (overhead + sum over its pieces of (entry - overhead)),

`scale` the table's calibration (whole networks timed in `build_table`'s
passes; 1 without one). The file is
JSON (`TABLE_FORMAT`), keyed by the pieces' `key` text, and rewritten after
every timing, so a killed build keeps what it finished and a rerun times
only the rest.

Imports nothing from `autonl_tf.search` (which builds a space's pieces:
`autonl_tf.search.pieces`).
"""

import os
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np

from autonl_tf import arch as arch_lib
from autonl_tf import io
from autonl_tf.latency import timing as timing_lib
from autonl_tf.latency.keys import OVERHEAD, OVERHEAD_PIECE, Piece, arch_pieces

TABLE_FORMAT = 1

#: What an entry's `ms` is (in every table's settings, so that tables of
#: another statistic are refused rather than mixed).
STATISTIC = "fastest invoke"

#: How the calibration networks are timed, as recorded in a table's settings
#: (so that a table calibrated another way is refused on resume, not mixed).
CALIBRATION_RULE = "whole networks timed in the passes through the pieces, spread among them"


def table_settings(what: str, input_size: int, num_classes: int, threads: int, warmup: int,
                   repeats: int, passes: int) -> dict:
  """The settings a table is built and checked under (`LatencyTable.check`),
  with this machine."""
  return {"what": what, "input_size": input_size, "num_classes": num_classes,
          "threads": threads, "warmup": warmup, "repeats": repeats, "passes": passes,
          "statistic": STATISTIC, "settle": timing_lib.SETTLE_RULE,
          "calibration": CALIBRATION_RULE, "machine": timing_lib.machine()}


class LatencyTable:
  """{piece key: timing} with the settings it was measured under; the
  calibration (`build_table`'s `calibration_archs`): whole networks of the
  space timed end to end (`networks`, each with its summed entries
  `pieces_ms`) and `scale`, the median of their measured / summed latency,
  by which every prediction is multiplied (1 without a calibration); and
  `checks`, held-out networks timed the same way."""

  def __init__(self, entries=None, settings=None, calibration=None, checks=None):
    self.entries: Dict[str, dict] = dict(entries or {})
    self.settings: dict = dict(settings or {})
    self.calibration: dict = dict(calibration or {})
    self.checks: list = list(checks or ())

  @property
  def scale(self) -> float:
    return float(self.calibration.get("scale", 1.0))

  @property
  def timings(self) -> list:
    """Every timing the table holds: its entries, its calibration's and its
    check networks (`timing.add_pass` results)."""
    return [*self.entries.values(), *self.calibration.get("networks", ()), *self.checks]

  @property
  def timing(self) -> tuple:
    """(threads, warmup, repeats, passes): `time_passes` / `time_arch`'s
    arguments that time a model like this table's entries."""
    s = self.settings
    return s["threads"], s["warmup"], s["repeats"], s.get("passes", 1)

  @classmethod
  def load(cls, path) -> "LatencyTable":
    try:
      data = io.read_json(path)
    except (OSError, ValueError) as e:
      raise ValueError(f"cannot read the latency table {path}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT or \
        not isinstance(data.get("entries"), dict):
      raise ValueError(f"{path} is not a latency table (format {TABLE_FORMAT}) of "
                       f"tools/latency_table.py")
    return cls(data["entries"], data.get("settings"), data.get("calibration"),
               data.get("checks"))

  def save(self, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    io.write_json(path, {"format": TABLE_FORMAT, "settings": self.settings,
                         "entries": self.entries, "calibration": self.calibration,
                         "checks": self.checks})

  def check(self, path, **wanted):
    """Raises a ValueError naming the difference unless the table was built
    with the settings `wanted` (e.g. `input_size=32, num_classes=10`) and
    this module's `STATISTIC` (a table of medians is refused)."""
    wanted = dict(wanted, statistic=STATISTIC)
    other = {k: self.settings.get(k) for k in wanted if self.settings.get(k) != wanted[k]}
    if other:
      raise ValueError(f"the latency table {path} was built with {other}, not "
                       f"{ {k: wanted[k] for k in other} }: build a table for these")

  def entry(self, key: Union[Piece, str]) -> float:
    """The ms of entry `key` (a `Piece`, or its key text, e.g. `OVERHEAD`)."""
    key = str(key)
    if key not in self.entries:
      raise ValueError(f"the latency table has no entry '{key}' (built for "
                       f"{self.settings.get('what', 'another space or size')})")
    return self.entries[key]["ms"]

  def ms(self, piece: Piece) -> float:
    """The entry of `piece` minus the invoke overhead, times `scale`."""
    return self.scale * (self.entry(piece) - self.entry(OVERHEAD))

  def overhead(self) -> float:
    """The invoke overhead (counted once per network), times `scale`."""
    return self.scale * self.entry(OVERHEAD)

  def predict(self, arch: arch_lib.Arch, input_size: int, num_classes: int) -> float:
    """Predicted ms of the whole network: overhead + its pieces."""
    return self.breakdown(arch, input_size, num_classes)["total"]

  def breakdown(self, arch: arch_lib.Arch, input_size: int, num_classes: int) -> dict:
    """Predicted ms per part of the network: `overhead`, `stem`, `blocks`
    (one per block of `expand_blocks`, its LightNL included), `head`, and
    their sum `total` (all times `scale`)."""
    out = {"overhead": self.overhead(), "blocks": []}
    for piece in arch_pieces(arch, input_size, num_classes):
      if piece.kind == "mbconv":
        out["blocks"].append(self.ms(piece))
      elif piece.kind == "lightnl":
        out["blocks"][-1] += self.ms(piece)
      else:
        out[piece.kind] = self.ms(piece)
    out["total"] = out["overhead"] + out["stem"] + sum(out["blocks"]) + out["head"]
    return out


def _interleaved(pieces: Sequence[str], networks: Sequence[str]) -> list:
  """`pieces` with `networks` spread evenly among them (network j after
  about (j + 1/2) / len(networks) of the pieces)."""
  order = list(pieces)
  for j in reversed(range(len(networks))):
    order.insert(int((j + 0.5) * len(pieces) / len(networks)), networks[j])
  return order


def _resumed(path: str, settings: dict) -> LatencyTable:
  """The table at `path` to complete (a new one where there is none); a
  build with other settings is refused."""
  if not os.path.exists(path):
    return LatencyTable(settings=settings)
  old = LatencyTable.load(path)
  if old.settings != settings:
    raise ValueError(f"{path} holds a table built with other settings ({old.settings}); "
                     f"remove it or pass another --out")
  return old


def build_table(pieces: Sequence[Piece], path: str, settings: dict, threads: int, warmup: int,
                repeats: int, progress: Optional[Callable[[int, int, str], None]] = None,
                timer=None, passes: int = 1, calibration_archs: Sequence[arch_lib.Arch] = (),
                check_archs: Sequence[arch_lib.Arch] = ()) -> LatencyTable:
  """Times every piece (and the invoke overhead) `passes` times, one pass
  through them all after another, into the table at `path` (created, or
  completed when it holds a build with the same settings); an entry's `ms`
  is the smallest of its passes' (`passes_ms`), and an entry whose two
  fastest passes disagree is timed again (`timing.time_in_passes`).

  `calibration_archs`, whole networks of the space (at the settings'
  `input_size` and `num_classes`), are timed end to end in the same passes,
  spread among the pieces, and set the table's `scale`: the median of their
  measured / summed entries, the part of a whole network's time that its
  pieces timed alone miss. In the same passes and not after them because on
  a shared host the ratio of a whole network to its pieces drifts with the
  host's state: timed together, scale and entries share that state.
  `check_archs`, timed the same way but held out of the scale, are the
  table's own check (`LatencyTable.checks`: measured against predicted).

  The file is rewritten after every timing: a rerun after a kill times only
  what is missing. Each piece and network is converted once (`timer(item)`,
  item a `Piece` or an `Arch`; default: convert and `time_tflite`)."""
  flat = {}

  def convert_and_time(item):
    key = item.key if isinstance(item, Piece) else arch_lib.format_arch(item)
    if key not in flat:
      flat[key] = (timing_lib.piece_tflite(item) if isinstance(item, Piece) else
                   timing_lib.arch_tflite(item, settings["input_size"], settings["num_classes"]))
    return timing_lib.time_tflite(flat[key], threads, warmup, repeats)

  timer = timer or convert_and_time
  table = _resumed(path, settings)
  todo = dict((p.key, p) for p in [OVERHEAD_PIECE] + list(pieces))
  roles = {"calibration": calibration_archs, "check": check_archs}
  networks = {}  # key -> (role, arch, its text)
  for role, archs in roles.items():
    for arch in archs:
      text = arch_lib.format_arch(arch)
      networks[f"{role} network {text}"] = (role, arch, text)
  saved = {n["arch"]: n for n in [*table.calibration.get("networks", ()), *table.checks]}
  if saved and set(saved) != {text for _, _, text in networks.values()}:
    raise ValueError(f"{path} holds a table timed with other calibration or check networks; "
                     f"remove it or pass another --out")
  timings = dict(table.entries)
  for key, (_, _, text) in networks.items():
    if text in saved:
      timings[key] = saved[text]
  unscaled = LatencyTable(settings=settings)

  def save():
    table.entries = {k: timings[k] for k in todo if k in timings}
    unscaled.entries = table.entries
    done = len(table.entries) == len(todo)
    by_role = {role: [] for role in roles}
    for key, (role, arch, text) in networks.items():
      net = dict(timings.get(key, {}), arch=text)
      if done:
        net["pieces_ms"] = unscaled.predict(arch, settings["input_size"],
                                            settings["num_classes"])
      by_role[role].append(net)
    table.calibration = {"networks": by_role["calibration"]} if calibration_archs else {}
    if done and calibration_archs and all("ms" in n for n in by_role["calibration"]):
      table.calibration["scale"] = float(np.median(
          [n["ms"] / n["pieces_ms"] for n in by_role["calibration"]]))
    table.checks = by_role["check"]
    table.save(path)

  item = lambda key: todo[key] if key in todo else networks[key][1]
  timing_lib.time_in_passes(_interleaved(list(todo), list(networks)), timings,
                            lambda key: timer(item(key)), passes, save, progress)
  save()
  return table
