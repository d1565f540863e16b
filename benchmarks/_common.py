"""Shared by the benchmark scripts (which import the installed `autonl_tf`:
`pip install -r requirements.txt` or `pip install .`): the common flags
(--quick, --format, --threads, --warmup, --repeats), the machine line, timing
(warm-up runs, then repeats, median) and aligned / markdown tables.

Nothing here imports TensorFlow at module level.
"""

import dataclasses
import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Sequence

from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

flags.DEFINE_bool("quick", False, "Small shapes and few repeats (under a minute on 2 cores).")
flags.DEFINE_enum("format", "text", ["text", "markdown"],
                  "Output format; markdown tables paste into docs/RESULTS.md.")
flags.DEFINE_integer("threads", 0, "TensorFlow intra-op threads and TFLite threads (0: all cores).")
flags.DEFINE_integer("warmup", None, "Untimed runs before timing (default: per script and --quick).")
flags.DEFINE_integer("repeats", None, "Timed runs; the median is reported (default: per script "
                     "and --quick).")
FLAGS = flags.FLAGS


def pick(value, quick, full):
  """`value` when the flag was given, else the --quick or the full default."""
  if value is not None:
    return value
  return quick if FLAGS.quick else full


def warmup_repeats(quick=(1, 3), full=(3, 10)):
  return pick(FLAGS.warmup, quick[0], full[0]), pick(FLAGS.repeats, quick[1], full[1])


def num_threads() -> int:
  usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return FLAGS.threads or usable or 1


def setup(seed=0):
  """Quiet logs, TF threads (before the TF runtime starts) and seeds."""
  from absl import logging
  logging.set_verbosity(logging.WARNING)
  import tensorflow as tf
  if FLAGS.threads:
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
  tf.get_logger().setLevel("ERROR")
  import keras
  keras.utils.set_random_seed(seed)


# ------------------------------------------------------------- machine ---

def cpu_model() -> str:
  from autonl_tf.latency import cpu_model as model  # no TensorFlow
  return model()


def machine_info() -> str:
  """`CPU model | cores | TF / Keras / Python versions` (imports TF)."""
  import keras
  import tensorflow as tf
  usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  threads = f", {FLAGS.threads} threads" if FLAGS.threads else ""
  return (f"machine: {cpu_model()} | {os.cpu_count()} cores ({usable} usable{threads}) | "
          f"TF {tf.__version__} | Keras {keras.__version__} | Python {platform.python_version()}"
          f"{' | --quick' if FLAGS.quick else ''}")


# -------------------------------------------------------------- timing ---

@dataclasses.dataclass(frozen=True)
class Timing:
  """Seconds per call over the timed repeats."""
  samples: tuple

  @property
  def median(self) -> float:
    return statistics.median(self.samples)

  @property
  def min(self) -> float:
    return min(self.samples)


def measure(fn: Callable[[], object], warmup: int, repeats: int) -> Timing:
  """Calls `fn` `warmup` times untimed, then `repeats` times timed. `fn`
  must block until its work is done (eager TF on CPU does)."""
  return measure_many({"_": fn}, warmup, repeats)["_"]


def measure_many(fns: Dict[str, Callable[[], object]], warmup: int, repeats: int) -> Dict[str, Timing]:
  """Like `measure`, interleaving the functions (one call of each per
  repeat) so that a slow drift of the machine hits all of them alike."""
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  samples = {name: [] for name in fns}
  for _ in range(max(1, repeats)):
    for name, fn in fns.items():
      start = time.perf_counter()
      fn()
      samples[name].append(time.perf_counter() - start)
  return {name: Timing(tuple(s)) for name, s in samples.items()}


def train_step_fn(model, x, y, warmup: int = 1):
  """A callable running one compiled train step of `model` (compiled) on the
  fixed batch `(x, y)`, through the same `train_function` as `model.fit`.

  Running `train_function` on an iterator (rather than `train_on_batch`)
  times exactly the step `fit` runs, without Keras' per-call data adapter.
  """
  import tensorflow as tf
  ds = tf.data.Dataset.from_tensors((x, y)).repeat()
  model.fit(ds, steps_per_epoch=max(1, warmup), epochs=1, verbose=0)  # builds and traces
  iterator = iter(ds)

  def step():
    logs = model.train_function(iterator)
    return float(logs["loss"])

  step()  # traces for this iterator, if needed
  return step


# -------------------------------------------------------------- output ---

def ms(seconds: float) -> str:
  return f"{seconds * 1e3:.2f}" if seconds < 1 else f"{seconds * 1e3:.0f}"


def millions(n: float) -> str:
  return f"{n / 1e6:.2f}M" if n < 1e7 else f"{n / 1e6:.1f}M"


def ratio(x: float) -> str:
  return f"{x:.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def verdict(ok: bool) -> str:
  return "PASS" if ok else "FAIL"


def title(text: str):
  print(f"\n### {text}\n" if FLAGS.format == "markdown" else f"\n== {text} ==")


def note(text: str):
  print(f"\n{text}\n" if FLAGS.format == "markdown" else text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]):
  """Prints an aligned text table (first column left, others right) or a
  markdown table (a `|` inside a cell escaped, e.g. `max |logit|`)."""
  cells: List[List[str]] = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
  widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
  if FLAGS.format == "markdown":
    cells = [[c.replace("|", "\\|") for c in r] for r in cells]
    line = lambda r: "| " + " | ".join(r) + " |"
    print(line(cells[0]))
    print("|" + "|".join(":---" if i == 0 else "---:" for i in range(len(headers))) + "|")
    for r in cells[1:]:
      print(line(r))
    return
  fmt = lambda r: "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                            for i, c in enumerate(r))
  print(fmt(cells[0]))
  print("  ".join("-" * w for w in widths))
  for r in cells[1:]:
    print(fmt(r))


def header(what: str):
  """The first lines of every script's output."""
  if FLAGS.format == "markdown":
    print(f"## {what}\n\n`{machine_info()}`")
  else:
    print(what)
    print(machine_info())
