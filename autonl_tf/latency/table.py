"""The latency table file: every piece of a network or search space timed
as its own tiny TFLite model on this machine (`timing`), keyed by its
`Piece` (FBNet / ProxylessNAS-style tables, built for the user's own
hardware), and a prediction for any network made of those pieces.

The table holds `overhead`, the time of invoking a model that does almost
nothing; every entry includes it once, a whole network only once, so

  predicted(arch) = scale * (overhead + sum over its pieces of (entry - overhead)),

`scale` the table's calibration (`calibrate`; 1 without one). The file is
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


def table_settings(what: str, input_size: int, num_classes: int, threads: int, warmup: int,
                   repeats: int, passes: int) -> dict:
  """The settings a table is built and checked under (`LatencyTable.check`),
  with this machine."""
  return {"what": what, "input_size": input_size, "num_classes": num_classes,
          "threads": threads, "warmup": warmup, "repeats": repeats, "passes": passes,
          "statistic": STATISTIC, "settle": timing_lib.SETTLE_RULE,
          "machine": timing_lib.machine()}


class LatencyTable:
  """{piece key: timing} with the settings it was measured under, and the
  calibration (`calibrate`): whole networks of the space timed end to end,
  and `scale`, the median of their measured / summed latency, by which
  every prediction is multiplied (1 without a calibration)."""

  def __init__(self, entries=None, settings=None, calibration=None):
    self.entries: Dict[str, dict] = dict(entries or {})
    self.settings: dict = dict(settings or {})
    self.calibration: dict = dict(calibration or {})

  @property
  def scale(self) -> float:
    return float(self.calibration.get("scale", 1.0))

  @property
  def timings(self) -> list:
    """Every timing the table holds: its entries and its calibration's
    networks (`timing.add_pass` results)."""
    return [*self.entries.values(), *self.calibration.get("networks", ())]

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
    return cls(data["entries"], data.get("settings"), data.get("calibration"))

  def save(self, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    io.write_json(path, {"format": TABLE_FORMAT, "settings": self.settings,
                         "entries": self.entries, "calibration": self.calibration})

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


def build_table(pieces: Sequence[Piece], path: str, settings: dict, threads: int, warmup: int,
                repeats: int, progress: Optional[Callable[[int, int, str], None]] = None,
                timer=None, passes: int = 1) -> LatencyTable:
  """Times every piece (and the invoke overhead) `passes` times, one pass
  through them all after another, into the table at `path` (created, or
  completed when it holds a build with the same settings); an entry's `ms`
  is the smallest of its passes' (`passes_ms`), and an entry whose two
  fastest passes disagree is timed again (`timing.time_in_passes`). The
  file is rewritten after every timing: a rerun after a kill times only
  what is missing. Each piece is converted once (`timer`, default: convert
  and `time_tflite`)."""
  flat = {}

  def convert_and_time(piece):
    if piece.key not in flat:
      flat[piece.key] = timing_lib.piece_tflite(piece)
    return timing_lib.time_tflite(flat[piece.key], threads, warmup, repeats)

  timer = timer or convert_and_time
  table = LatencyTable(settings=settings)
  if os.path.exists(path):
    old = LatencyTable.load(path)
    if old.settings != settings:
      raise ValueError(f"{path} holds a table built with other settings ({old.settings}); "
                       f"remove it or pass another --out")
    table = old
  todo = dict((p.key, p) for p in [OVERHEAD_PIECE] + list(pieces))
  timing_lib.time_in_passes(list(todo), table.entries, lambda key: timer(todo[key]), passes,
                 lambda: table.save(path), progress)
  return table


def calibrate(table: LatencyTable, path: str, archs: Sequence[arch_lib.Arch], input_size: int,
              num_classes: int, threads: int, warmup: int, repeats: int, passes: int = 1,
              progress: Optional[Callable[[int, int, str], None]] = None,
              timer=None) -> LatencyTable:
  """Times the networks `archs` end to end (`passes` passes through all of
  them; each converted once) and sets the table's `scale` to the median of
  measured / summed entries: the part of a whole network's time that its
  pieces timed alone miss (a few percent: a whole network runs slower than
  the sum of its pieces). Resumable like `build_table`: the file is
  rewritten after every timing. `timer(arch)` (default: `time_tflite` of
  `arch_tflite`) returns a timing like `time_tflite`'s."""
  flat = {}

  def convert_and_time(arch):
    key = arch_lib.format_arch(arch)
    if key not in flat:
      flat[key] = timing_lib.arch_tflite(arch, input_size, num_classes)
    return timing_lib.time_tflite(flat[key], threads, warmup, repeats)

  timer = timer or convert_and_time
  by_text = {arch_lib.format_arch(a): a for a in archs}
  old = {n["arch"]: n for n in table.calibration.get("networks", ())}
  unscaled = LatencyTable(table.entries, table.settings)
  nets = {t: dict(old.get(t, {}), arch=t, pieces_ms=unscaled.predict(a, input_size, num_classes))
          for t, a in by_text.items()}

  def save():
    table.calibration = {"networks": list(nets.values())}
    table.save(path)

  save()
  timing_lib.time_in_passes(list(nets), nets, lambda text: timer(by_text[text]), passes, save,
                            progress)
  nets = list(nets.values())
  if nets:
    table.calibration["scale"] = float(np.median([n["ms"] / n["pieces_ms"] for n in nets]))
    table.save(path)
  return table
