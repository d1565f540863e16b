"""Building pieces and networks as TFLite models, and timing them with the
LiteRT interpreter on this machine.

A timing is the fastest invoke of `repeats` (after `warmup` untimed
invokes), with the median and 10th-90th percentile spread recorded. The
fastest, not the median: on a shared machine other processes only ever add
time, in bursts, and they hit a whole network's few milliseconds far more
often than a piece's tenth of one, so medians would make a table of pieces
under-predict whole networks. A table entry is the smallest of `passes`
such timings spread over minutes (`time_in_passes`), past slow spells of
the machine, and it is timed again (up to `SETTLE_MAX_PASSES`) until its
two fastest passes agree within `SETTLE_TOLERANCE` (`settled`): a machine
whose timings swing between a fast and a slow state from one interpreter
to the next gives the fast one, or says it did not (`settled` False).

With several threads, a job on another core takes a thread's core and the
timing is that of fewer threads: `time_tflite` measures the load of other
processes meanwhile and retries a contended timing.

Imports nothing from `autonl_tf.search`; TensorFlow, Keras and LiteRT only
inside the functions that need them.
"""

import os
import platform
import time
from typing import Callable, Optional, Sequence

import numpy as np

from autonl_tf import arch as arch_lib
from autonl_tf.latency.keys import Piece


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
  """float32 TFLite flatbuffer of `model` (builtin ops only), batch 1.

  The inference function is frozen and converted directly
  (`TFLiteConverter.from_concrete_functions` with
  `experimental_lower_to_saved_model` off, so the converter does not save
  and reload it as a SavedModel first): the same ops, tensors and outputs
  as converting the model through a SavedModel (the route of
  `export.tflite.convert`; tests/test_latency.py checks it) in a sixth of
  the time, which is what building a table of a hundred pieces costs. No
  signature is kept: these models are only timed."""
  import tensorflow as tf
  serve = tf.function(lambda x: model(x, training=False),
                      input_signature=[tf.TensorSpec([1, *input_shape], tf.float32)])
  converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()],
                                                              model)
  converter.experimental_lower_to_saved_model = False
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


# ----------------------------------------------------------- contention --

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


def others_load(seconds: float) -> Optional[float]:
  """The cores other processes kept busy over the next `seconds` (None
  without `/proc/stat`): a check that the machine is idle before a timing."""
  before = _cpu_snapshot()
  time.sleep(seconds)
  return others_cores(before, _cpu_snapshot())


def contended(others: Optional[float], threads: int) -> bool:
  """Fewer idle cores than `threads` (a quarter core of slack) while timing:
  at 2 threads on 2 cores, a job on the other core takes the second thread's
  core, and the timing is that of 1 thread."""
  cores = os.cpu_count() or 1
  return others is not None and others > cores - min(threads, cores) + 0.25


#: With threads > 1 a timing lasts at least this long, so that the load of
#: other processes over it is measured (/proc/stat counts 10 ms ticks), and
#: a contended one is retried this many times, a second apart.
CONTENTION_WINDOW_S = 0.25
CONTENTION_RETRIES = 5

#: A model timed in passes (2 or more) is timed again until its two fastest
#: passes agree within this fraction, at most `SETTLE_MAX_PASSES` passes in all.
SETTLE_TOLERANCE = 0.03
SETTLE_MAX_PASSES = 8

#: The rule above, as recorded in a table's settings.
SETTLE_RULE = (f"timed again until the two fastest passes agree within "
               f"{100 * SETTLE_TOLERANCE:g}%, at most {SETTLE_MAX_PASSES} passes")


# --------------------------------------------------------------- timing --

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


def settled(passes_ms: Sequence[float]) -> bool:
  """The two fastest of `passes_ms` agree within `SETTLE_TOLERANCE`."""
  fastest = sorted(passes_ms)[:2]
  return len(fastest) == 2 and fastest[1] <= (1 + SETTLE_TOLERANCE) * fastest[0]


def add_pass(entry: Optional[dict], timing: dict) -> dict:
  """`entry` (None: none yet) with one more pass's `time_tflite` result:
  `ms` the smallest of `passes_ms`, whether it is `settled`, the latest
  spread kept (and the entry's other fields)."""
  runs = (entry or {}).get("passes_ms", []) + [timing["ms"]]
  hit = (entry or {}).get("contended_passes", 0) + int(bool(timing.get("contended")))
  return {**(entry or {}), **timing, "ms": min(runs), "passes_ms": runs, "contended_passes": hit,
          "settled": settled(runs)}


def time_in_passes(keys: Sequence[str], entries: dict, timer: Callable[[str], dict],
                   passes: int, save: Callable[[], None],
                   progress: Optional[Callable[[int, int, str], None]] = None):
  """Times every key `passes` times, one pass through all of them after
  another, then (with 2 passes or more) again those whose two fastest
  passes do not agree (`settled`), one pass through them after another, up
  to `SETTLE_MAX_PASSES`: `entries[key]` becomes
  `add_pass(entries.get(key), timer(key))`, skipping the passes an entry
  already has, and `save()` runs after every timing, so a killed run
  resumes where it stopped (`build_table` and the
  benchmarks). `progress(done, total, key)` after each (`total` grows by
  each settling pass's timings)."""
  count = lambda key: len((entries.get(key) or {}).get("passes_ms", ()))
  total, done = len(keys) * passes, sum(min(passes, count(key)) for key in keys)
  last = max(passes, SETTLE_MAX_PASSES) if passes >= 2 else passes  # 1 pass: no settling
  for n in range(last):
    todo = [key for key in keys if count(key) <= n]
    if n >= passes:
      todo = [key for key in todo if not settled(entries[key]["passes_ms"])]
      total += len(todo)
    for key in todo:
      entries[key] = add_pass(entries.get(key), timer(key))
      save()
      done += 1
      if progress:
        progress(done, total, key)


def time_passes(flatbuffer: bytes, threads: int, warmup: int, repeats: int, passes: int) -> dict:
  """One model timed like a table entry (`time_in_passes` of it alone: its
  passes back to back, then again until it is `settled`; callers that time
  many models use `time_in_passes` to spread the passes out)."""
  entries = {}
  time_in_passes(["model"], entries, lambda _: time_tflite(flatbuffer, threads, warmup, repeats),
                 passes, lambda: None)
  return entries["model"]


def time_arch(arch: arch_lib.Arch, input_size: int, num_classes: int, threads: int,
              warmup: int, repeats: int, passes: int = 1) -> dict:
  """The whole network timed end to end like a table entry (`time_passes`)."""
  return time_passes(arch_tflite(arch, input_size, num_classes), threads, warmup, repeats,
                     passes)


# -------------------------------------------------------------- machine --

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
