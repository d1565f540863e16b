"""Latency lookup tables: every piece of a network or search space timed as
its own tiny TFLite model with the LiteRT interpreter on this machine
(FBNet / ProxylessNAS-style tables, built for the user's own hardware).

A piece is the stem, one MBConv block (without its LightNL), one LightNL,
or the head, at its input shape. Its key names its content, not its place:
`mbconv 16x16 r1_k5_s22_e6_i24_o40_se0.25`, `lightnl 8x8x40 r0.25 s2`,
`stem 32x32 s1 c16`, `head 4x4x160 c640 k10` (with ` hard_swish` or
` relu6` appended for networks of that activation, ` second_moment` for
LightNLs of that product) — so one table serves a
space and every network of it, whatever position a block lands in. The table also
holds `overhead`, the time of invoking a model that does almost nothing;
every entry includes it once, a whole network only once, so

  predicted(arch) = scale * (overhead + sum over its pieces of (entry - overhead)),

`scale` the table's calibration (`calibrate`; 1 without one).

Each entry is the fastest invoke of `repeats` (after `warmup` untimed
invokes), taken over `passes` passes through the whole table, with the
median and 10th-90th percentile spread recorded. Not the median: on a
shared machine other processes only ever add time, in bursts; measured on
the 2-core development VM, a whole CIFAR network's median invoke drifted by
10-25% between runs while its fastest invoke held within about 4%, and the
bursts hit a 4 ms network far more often than a 0.1 ms piece, so medians
made the table under-predict whole networks by up to 32%. Passes spread
each entry's timings over minutes, past slow spells of the machine. The
table file is rewritten after every timing, so a killed build keeps what it
finished and a rerun times only the rest.
"""

import dataclasses
import os
import platform
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf import io

__all__ = ["Piece", "arch_pieces", "space_block_pieces", "space_fixed_pieces", "space_pieces",
           "LatencyTable", "table_settings", "space_what", "time_tflite", "piece_tflite",
           "build_table", "calibrate", "calibration_archs", "add_pass", "time_in_passes",
           "time_passes", "time_arch", "arch_tflite", "model_tflite", "cpu_model", "machine"]

OVERHEAD = "overhead"
TABLE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Piece:
  """What one table entry times.

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


def _without_nl(spec):
  return dataclasses.replace(spec, repeats=1, nl_ratio=0.0, nl_stride=1)


def _stem_piece(input_size, stride, filters, activation):
  return Piece("stem", (input_size, input_size, 3), stride=stride, filters=filters,
               activation=activation)


def arch_pieces(arch: arch_lib.Arch, input_size: int, num_classes: int) -> List[Piece]:
  """The pieces of the network `arch` at `input_size`, in order."""
  act = arch.activation
  pieces = [_stem_piece(input_size, arch.stem_stride, arch.stem_filters, act)]
  h = w = flops.same_out_size(input_size, arch.stem_stride)
  c = arch.stem_filters
  for spec in arch_lib.expand_blocks(arch):
    pieces.append(Piece("mbconv", (h, w, c), _without_nl(spec), activation=act))
    h, w, c = flops.same_out_size(h, spec.strides[0]), flops.same_out_size(w, spec.strides[1]), \
        spec.out_filters
    if spec.has_nonlocal:
      pieces.append(Piece("lightnl", (h, w, c), ratio=spec.nl_ratio, stride=spec.nl_stride,
                          nl_norm=arch.nl_norm))
  pieces.append(Piece("head", (h, w, c), filters=arch.head_filters, num_classes=num_classes,
                      activation=act))
  return pieces


def _space_sizes(space, input_size):
  """(input size of the first searchable block, [(in size, out size)] of
  every searchable block)."""
  h = flops.same_out_size(input_size, space.stem_stride)
  if space.first_block:
    h = flops.same_out_size(h, arch_lib.parse_block(space.first_block).strides[0])
  sizes = []
  for block in space.blocks():
    sizes.append((h, flops.same_out_size(h, block[4])))
    h = sizes[-1][1]
  return sizes


def space_block_pieces(space, input_size) -> List[Dict[str, Piece]]:
  """Per searchable block of `space`: {option: Piece} with options
  `k<k>_e<e>` (the block) and `nl<r>_s<s>` (its LightNL)."""
  from autonl_tf.search.space import option_spec
  out = []
  for (h, ho), (_, _, cin, cout, stride, se, _) in zip(_space_sizes(space, input_size),
                                                        space.blocks()):
    options = {}
    for k in space.kernel_sizes:
      for e in space.expand_ratios:
        options[f"k{k}_e{e}"] = Piece("mbconv", (h, h, cin),
                                      option_spec(cin, cout, stride, se, k, e),
                                      activation=space.activation)
    for r in space.nl_ratios:
      for s in space.nl_strides:
        options[f"nl{r:g}_s{s}"] = Piece("lightnl", (ho, ho, cout), ratio=r, stride=s,
                                         nl_norm=space.nl_norm)
    out.append(options)
  return out


def space_fixed_pieces(space, input_size: int, num_classes: int) -> List[Piece]:
  """The pieces of `space` no decision changes: the stem, the fixed first
  block (if any) and the head."""
  act = space.activation
  pieces = [_stem_piece(input_size, space.stem_stride, space.stem_filters, act)]
  if space.first_block:
    h = flops.same_out_size(input_size, space.stem_stride)
    first = arch_lib.parse_block(space.first_block)
    pieces.append(Piece("mbconv", (h, h, space.stem_filters), _without_nl(first),
                        activation=act))
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


# ------------------------------------------------------------- building --

def _piece_model(piece: Piece):
  """The Keras model of one piece, batch 1."""
  import keras
  from autonl_tf.layers.lightnl import LightNL
  from autonl_tf.layers.mbconv import MBConv
  from autonl_tf.models import network
  inputs = keras.Input(shape=piece.shape, batch_size=1)
  if piece.kind == "mbconv":
    x = MBConv(piece.spec, activation=piece.activation)(inputs)
  elif piece.kind == "lightnl":
    x = LightNL(piece.ratio, piece.stride, norm=piece.nl_norm)(inputs)
  elif piece.kind == "stem":
    x = network.stem(inputs, arch_lib.Arch(blocks=(), stem_stride=piece.stride,
                                           stem_filters=piece.filters,
                                           activation=piece.activation))
  elif piece.kind == "head":
    x = network.head(inputs, arch_lib.Arch(blocks=(), head_filters=piece.filters,
                                           activation=piece.activation), piece.num_classes)
  else:  # the invoke overhead: one tiny elementwise op
    x = keras.layers.ReLU()(inputs)
  return keras.Model(inputs, x)


def model_tflite(model, input_shape) -> bytes:
  """float32 TFLite flatbuffer of `model` (builtin ops only)."""
  import keras
  import tensorflow as tf
  with tempfile.TemporaryDirectory() as tmp:
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False),
                         input_signature=[tf.TensorSpec([1, *input_shape], tf.float32)])
    archive.write_out(tmp, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def piece_tflite(piece: Piece) -> bytes:
  import keras
  keras.backend.clear_session()
  return model_tflite(_piece_model(piece), piece.shape)


def arch_tflite(arch: arch_lib.Arch, input_size: int, num_classes: int) -> bytes:
  """The whole network (`build_model`, no input normalisation) as TFLite."""
  import keras
  from autonl_tf.models.network import build_model
  keras.backend.clear_session()
  model = build_model(arch, (input_size, input_size, 3), num_classes)
  return model_tflite(model, (input_size, input_size, 3))


def _cpu_snapshot():
  """(wall s, this process's CPU s, the machine's busy CPU s) now; the last
  None where `/proc/stat` cannot be read."""
  busy = None
  try:
    with open("/proc/stat") as f:
      fields = [int(v) for v in f.readline().split()[1:9]]
    # user nice system idle iowait irq softirq steal: all but idle and iowait.
    busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
  except (OSError, ValueError, IndexError):
    pass
  return time.perf_counter(), time.process_time(), busy


def others_cores(before, after) -> Optional[float]:
  """The cores other processes kept busy between two `_cpu_snapshot`s
  (None without `/proc/stat`)."""
  if before[2] is None or after[2] is None or after[0] <= before[0]:
    return None
  return max(0.0, ((after[2] - before[2]) - (after[1] - before[1])) / (after[0] - before[0]))


def contended(others: Optional[float], threads: int) -> bool:
  """Fewer idle cores than `threads` (a quarter core of slack) while timing:
  at 2 threads on 2 cores, a job on the other core takes the second thread's
  core, and the timing is that of 1 thread (measured: docs/RESULTS.md
  section 8)."""
  cores = os.cpu_count() or 1
  return others is not None and others > cores - min(threads, cores) + 0.25


#: With threads > 1 a timing lasts at least this long, so that the load of
#: other processes over it is measured (/proc/stat counts 10 ms ticks), and
#: a contended one is retried this many times, a second apart.
CONTENTION_WINDOW_S = 0.25
CONTENTION_RETRIES = 5


def time_tflite(flatbuffer: bytes, threads: int, warmup: int, repeats: int) -> dict:
  """ms per invoke of a TFLite model on random input (of its input's dtype:
  float, or a quantized model's integers), over `repeats`
  invokes after `warmup`: `ms` the fastest (see the module docstring),
  `p10_ms`, `median_ms` and `p90_ms` the spread; `others_cores`, the cores
  other processes used meanwhile, and `contended` (`contended`). With
  `threads` > 1 the invokes go on for at least `CONTENTION_WINDOW_S`, and a
  contended timing is retried up to `CONTENTION_RETRIES` times (then kept,
  marked)."""
  for attempt in range(CONTENTION_RETRIES + 1 if threads > 1 else 1):
    if attempt:
      time.sleep(1.0)
    before = _cpu_snapshot()
    timing = _time_invokes(flatbuffer, threads, warmup, repeats,
                           CONTENTION_WINDOW_S if threads > 1 else 0.0)
    others = others_cores(before, _cpu_snapshot())
    timing.update(others_cores=others, contended=contended(others, threads))
    if not timing["contended"]:
      break
  return timing


def _time_invokes(flatbuffer: bytes, threads: int, warmup: int, repeats: int,
                  min_seconds: float) -> dict:
  from ai_edge_litert.interpreter import Interpreter
  interp = Interpreter(model_content=flatbuffer, num_threads=threads)
  interp.allocate_tensors()
  detail = interp.get_input_details()[0]
  rng = np.random.default_rng(0)
  if np.issubdtype(detail["dtype"], np.integer):  # a quantized model's pixels (int8 export)
    info = np.iinfo(detail["dtype"])
    x = rng.integers(info.min, info.max, detail["shape"], endpoint=True).astype(detail["dtype"])
  else:
    x = rng.standard_normal(detail["shape"]).astype(np.float32)
  interp.set_tensor(detail["index"], x)
  for _ in range(warmup):
    interp.invoke()
  samples = []
  begin = time.perf_counter()
  while len(samples) < max(1, repeats) or time.perf_counter() - begin < min_seconds:
    start = time.perf_counter()
    interp.invoke()
    samples.append(time.perf_counter() - start)
  p10, p50, p90 = np.percentile(samples, [10, 50, 90])
  return {"ms": 1e3 * float(min(samples)), "p10_ms": 1e3 * float(p10),
          "median_ms": 1e3 * float(p50), "p90_ms": 1e3 * float(p90), "repeats": len(samples)}


# ---------------------------------------------------------------- table --

def cpu_model() -> str:
  """The CPU's model name (`/proc/cpuinfo`), else what `platform` knows."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.lower().startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine() -> dict:
  """What a timing depends on: CPU, cores, LiteRT and Python versions."""
  try:
    from importlib.metadata import version
    litert = version("ai-edge-litert")
  except Exception:  # noqa: BLE001 - recorded as unknown
    litert = "unknown"
  return {"cpu": cpu_model(), "cores": os.cpu_count(), "litert": litert,
          "python": platform.python_version()}


#: What an entry's `ms` is (in every table's settings, so that tables of
#: another statistic are refused rather than mixed).
STATISTIC = "fastest invoke"


def table_settings(what: str, input_size: int, num_classes: int, threads: int, warmup: int,
                   repeats: int, passes: int) -> dict:
  """The settings a table is built and checked under (`LatencyTable.check`),
  with this machine."""
  return {"what": what, "input_size": input_size, "num_classes": num_classes,
          "threads": threads, "warmup": warmup, "repeats": repeats, "passes": passes,
          "statistic": STATISTIC, "machine": machine()}


def space_what(space) -> str:
  """How a space's table names what it covers."""
  act = "" if space.activation == "swish" else f" {space.activation}"
  norm = "" if space.nl_norm == "none" else f" nl_norm={space.nl_norm}"
  return f"space {space.name} x{space.width_multiplier:g}{act}{norm}"


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
    this module's `STATISTIC` (a table of medians, from before, is refused)."""
    wanted = dict(wanted, statistic=STATISTIC)
    other = {k: self.settings.get(k) for k in wanted if self.settings.get(k) != wanted[k]}
    if other:
      raise ValueError(f"the latency table {path} was built with {other}, not "
                       f"{ {k: wanted[k] for k in other} }: build a table for these")

  def entry(self, key: str) -> float:
    """The ms of entry `key` (a `Piece.key` or `OVERHEAD`)."""
    if key not in self.entries:
      raise ValueError(f"the latency table has no entry '{key}' (built for "
                       f"{self.settings.get('what', 'another space or size')})")
    return self.entries[key]["ms"]

  def ms(self, piece: Piece) -> float:
    """The entry of `piece` minus the invoke overhead, times `scale`."""
    return self.scale * (self.entry(piece.key) - self.entry(OVERHEAD))

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
  is the smallest of its passes' (`passes_ms`). The file is rewritten after
  every timing: a rerun after a kill times only what is missing. Each
  piece is converted once (`timer`, default: convert and `time_tflite`)."""
  flat = {}

  def convert_and_time(piece):
    if piece.key not in flat:
      flat[piece.key] = piece_tflite(piece)
    return time_tflite(flat[piece.key], threads, warmup, repeats)

  timer = timer or convert_and_time
  table = LatencyTable(settings=settings)
  if os.path.exists(path):
    old = LatencyTable.load(path)
    if old.settings != settings:
      raise ValueError(f"{path} holds a table built with other settings ({old.settings}); "
                       f"remove it or pass another --out")
    table = old
  todo = dict((p.key, p) for p in [Piece("overhead", (1, 1, 8))] + list(pieces))
  time_in_passes(list(todo), table.entries, lambda key: timer(todo[key]), passes,
                 lambda: table.save(path), progress)
  return table


def time_in_passes(keys: Sequence[str], entries: dict, timer: Callable[[str], dict],
                   passes: int, save: Callable[[], None],
                   progress: Optional[Callable[[int, int, str], None]] = None):
  """Times every key `passes` times, one pass through all of them after
  another: `entries[key]` becomes `add_pass(entries.get(key), timer(key))`,
  skipping the passes an entry already has, and `save()` runs after every
  timing, so a killed run resumes where it stopped (`build_table`,
  `calibrate` and the benchmarks). `progress(done, total, key)` after each."""
  count = lambda key: len((entries.get(key) or {}).get("passes_ms", ()))
  total, done = len(keys) * passes, sum(min(passes, count(key)) for key in keys)
  for n in range(passes):
    for key in keys:
      if count(key) > n:
        continue
      entries[key] = add_pass(entries.get(key), timer(key))
      save()
      done += 1
      if progress:
        progress(done, total, key)


#: Seed of the calibration networks (`calibration_archs`), apart from the
#: seeds that test or search use.
CALIBRATION_SEED = 9_000_001


def calibration_archs(space, count: int) -> List[arch_lib.Arch]:
  """`count` random networks of `space` (every decision uniform,
  `search.sampling.sample_arch`) from `CALIBRATION_SEED`."""
  import random
  from autonl_tf.search import sampling
  rng = random.Random(CALIBRATION_SEED)
  return [sampling.sample_arch(space, rng) for _ in range(count)]


def calibrate(table: LatencyTable, path: str, archs: Sequence[arch_lib.Arch], input_size: int,
              num_classes: int, threads: int, warmup: int, repeats: int, passes: int = 1,
              progress: Optional[Callable[[int, int, str], None]] = None,
              timer=None) -> LatencyTable:
  """Times the networks `archs` end to end (`passes` passes through all of
  them; each converted once) and sets the table's `scale` to the median of
  measured / summed entries: the part of a whole network's time that its
  pieces timed alone miss (measured on the development VM over 20 random
  networks per space: whole networks 5.8% (224px) and 5.3% (CIFAR) slower
  on average than their pieces' sum; the calibration networks gave scales
  1.041 and 1.026, docs/RESULTS.md section 8). Resumable like `build_table`:
  the file is rewritten after every timing. `timer(arch)` (default:
  `time_tflite` of `arch_tflite`) returns a timing like `time_tflite`'s."""
  flat = {}

  def convert_and_time(arch):
    key = arch_lib.format_arch(arch)
    if key not in flat:
      flat[key] = arch_tflite(arch, input_size, num_classes)
    return time_tflite(flat[key], threads, warmup, repeats)

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
  time_in_passes(list(nets), nets, lambda text: timer(by_text[text]), passes, save, progress)
  nets = list(nets.values())
  if nets:
    table.calibration["scale"] = float(np.median([n["ms"] / n["pieces_ms"] for n in nets]))
    table.save(path)
  return table


def add_pass(entry: Optional[dict], timing: dict) -> dict:
  """`entry` (None: none yet) with one more pass's `time_tflite` result:
  `ms` the smallest of `passes_ms`, the latest spread kept (and the entry's
  other fields)."""
  runs = (entry or {}).get("passes_ms", []) + [timing["ms"]]
  hit = (entry or {}).get("contended_passes", 0) + int(bool(timing.get("contended")))
  return {**(entry or {}), **timing, "ms": min(runs), "passes_ms": runs, "contended_passes": hit}


def time_passes(flatbuffer: bytes, threads: int, warmup: int, repeats: int, passes: int) -> dict:
  """One model timed like a table entry in `passes` timings back to back
  (callers that time many models spread the passes out: `time_in_passes`)."""
  entry = None
  for _ in range(passes):
    entry = add_pass(entry, time_tflite(flatbuffer, threads, warmup, repeats))
  return entry


def time_arch(arch: arch_lib.Arch, input_size: int, num_classes: int, threads: int,
              warmup: int, repeats: int, passes: int = 1) -> dict:
  """The whole network timed end to end like a table entry (`time_passes`)."""
  return time_passes(arch_tflite(arch, input_size, num_classes), threads, warmup, repeats,
                     passes)
