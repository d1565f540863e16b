"""What the long benchmarks (`search_vs_random.py`, `reference_table.py`)
share about their runs: one directory per run under a workdir, resumed
after a kill; each finished run's small files kept in a directory in git
and restored from there when the workdir is lost; the run's epoch times.

A run is any object with `name`, `seed`, `arch` (an arch file or anchor name
for a training, None for a search) and `search` (True: its success writes
`decisions.json`, else `metrics.json`).
"""

import math
import os
import statistics
import sys
import time
from typing import Callable, Optional

from autonl_tf import run_files


def epoch_clock(path):
  """A callback appending each epoch's wall time to `path` (JSON), so that a
  run's time survives the kills it resumed from."""
  import keras
  from autonl_tf import io

  class EpochClock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
      self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
      times = io.read_json(path) if os.path.exists(path) else {}
      times[str(epoch + 1)] = round(time.time() - self.start, 1)
      io.write_json(path, times)

  return EpochClock()


def run_seconds(run_dir) -> dict:
  """The run's time from its `epoch_times.json`: `wall`, the sum of its
  epochs' wall times, which counts every pause (a background run stopped
  while tests ran) and every job it shared the machine with; `alone`, its
  epochs times its fastest epoch: what it takes with the machine to itself."""
  path = os.path.join(run_dir, run_files.EPOCH_TIMES)
  if not os.path.exists(path):
    return {"wall": 0.0, "alone": 0.0}
  from autonl_tf import io
  times = list(io.read_json(path).values())
  return {"wall": float(sum(times)), "alone": len(times) * float(min(times))}


#: What a finished run keeps in --record_dir: its result (a training's
#: `metrics.json`, a search's `decisions.json` and `arch.txt`, or
#: `failed.json`), its settings and its epoch times; no weights.
RECORD_FILES = (run_files.METRICS, run_files.DECISIONS, run_files.ARCH, run_files.SEARCH_CONFIG,
                run_files.EPOCH_TIMES, run_files.FAILED,
                # the settings and per-epoch logs
                run_files.CONFIG, run_files.LOG, run_files.SEARCH_LOG)


def keep_record(run, workdir, records):
  """Copies the finished `run`'s `RECORD_FILES` into `<records>/<name>`."""
  from autonl_tf import io
  for name in RECORD_FILES:
    source = os.path.join(workdir, run.name, name)
    if os.path.exists(source):
      os.makedirs(os.path.join(records, run.name), exist_ok=True)
      io.copy_file(source, os.path.join(records, run.name, name))


def restore_record(run, workdir, records, log):
  """Copies `run`'s record from `<records>/<name>` into its run directory
  (which holds no result), after checking that it trained the network
  this plan trains."""
  from autonl_tf import arch as arch_lib
  from autonl_tf import io
  from autonl_tf.models import anchors
  kept = os.path.join(records, run.name)
  if not os.path.isdir(kept):
    return
  metrics = os.path.join(kept, run_files.METRICS)
  if os.path.exists(metrics) and run.arch:
    recorded = io.read_json(metrics)
    if anchors.is_anchor(run.arch):
      want, got = run.arch, recorded.get("arch")
    else:
      want, got = arch_lib.format_arch(arch_lib.load(run.arch)), recorded.get("arch_text")
    if got != want:
      raise ValueError(f"{metrics} records another network than the {run.arch} this code plans: "
                       "pass another --record_dir")
  os.makedirs(os.path.join(workdir, run.name), exist_ok=True)
  for name in os.listdir(kept):
    io.copy_file(os.path.join(kept, name), os.path.join(workdir, run.name, name))
  log(f"[{run.name}] restored from {kept}")


def result_paths(run, workdir):
  """`run`'s directory, the file its success writes (a search's
  `decisions.json`, a training's `metrics.json`) and its `failed.json`."""
  run_dir = os.path.join(workdir, run.name)
  done = os.path.join(run_dir, run_files.DECISIONS if run.search else run_files.METRICS)
  return run_dir, done, os.path.join(run_dir, run_files.FAILED)


def finished_record(run, workdir, log, records=None) -> Optional[dict]:
  """The record of `run` if it finished (or failed) before, in `workdir` or
  in the directory of `records` (restored from there, and a finished run
  kept there); None if it has not."""
  from autonl_tf import io
  _, done, failed = result_paths(run, workdir)
  if records and not (os.path.exists(done) or os.path.exists(failed)):
    restore_record(run, workdir, records, log)
  for result in (done, failed):
    if os.path.exists(result):
      if records:
        keep_record(run, workdir, records)
      return io.read_json(result)
  return None


def pooled_std(groups) -> float:
  """sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1)) over the groups with n_i > 1."""
  num = sum((len(g) - 1) * statistics.variance(g) for g in groups if len(g) > 1)
  den = sum(len(g) - 1 for g in groups if len(g) > 1)
  return math.sqrt(num / den) if den else float("nan")


def execute(run, workdir, work: Callable, log, records=None):
  """Runs `work(run_dir, prefix, clock)` for `run` (a training or search in
  `run_dir`, logging through `prefix`, with the callback `clock`) unless it
  finished (or failed) before, in `workdir` or in the directory of `records`
  (restored from there); a finished run is kept in `records`. A run that
  raises ArithmeticError, RuntimeError or ValueError (a NaN loss) is a
  result: recorded in `failed.json`. Returns `metrics.json` /
  `decisions.json`, or {"failed": why}."""
  from autonl_tf import io
  import keras
  record = finished_record(run, workdir, log, records)
  if record is not None:
    return record
  run_dir, done, failed = result_paths(run, workdir)
  os.makedirs(run_dir, exist_ok=True)
  keras.backend.clear_session()
  keras.utils.set_random_seed(run.seed)
  prefix = lambda line: log(f"[{run.name}] {line}")
  clock = epoch_clock(os.path.join(run_dir, run_files.EPOCH_TIMES))
  try:
    work(run_dir, prefix, clock)
  except (ArithmeticError, RuntimeError, ValueError) as e:  # a diverged run is a result
    record = {"failed": f"{type(e).__name__}: {e}"}
    io.write_json(failed, record)
    kept = f" and {os.path.join(records, run.name, run_files.FAILED)}" if records else ""
    log(f"[{run.name}] failed: {record['failed']} (recorded in {failed}{kept}; delete it to "
        "retry)")
  else:
    record = io.read_json(done)
  if records:
    keep_record(run, workdir, records)
  return record


def matched_anchor(prefix, budget, path, input_size, num_classes, widths) -> str:
  """`<prefix>:<width>` (a keras.applications anchor such as
  `keras:mobilenet_v2`, or an arch name such as `mobilenetv2-cifar`) at the
  width of `widths` (ascending) whose MACs at `input_size` are closest to
  `budget` (bisection: the MACs grow with the width); cached in `path`
  (JSON), which a later call reads instead."""
  from autonl_tf import io
  if os.path.exists(path):
    return io.read_json(path)["name"]
  macs = {}

  def count(i):
    if i not in macs:
      macs[i] = anchor_macs(f"{prefix}:{widths[i]:g}", input_size, num_classes)
    return macs[i]

  lo, hi = 0, len(widths) - 1
  while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (mid, hi) if count(mid) < budget else (lo, mid)
  best = min((lo, hi), key=lambda i: abs(count(i) - budget))
  name = f"{prefix}:{widths[best]:g}"
  io.write_json(path, {"name": name, "macs": count(best), "budget": budget})
  return name


def anchor_macs(name, input_size, num_classes) -> int:
  """The MACs of the network `name` (a keras.applications anchor, built;
  or an arch name of the codec, counted)."""
  from autonl_tf import arch as arch_lib
  from autonl_tf import flops
  from autonl_tf.models import anchors
  if anchors.is_anchor(name):
    import keras
    keras.backend.clear_session()
    return anchors.keras_model_macs(anchors.build_anchor(name, (input_size, input_size, 3),
                                                         num_classes))
  return flops.count(arch_lib.load(name), input_size, num_classes).macs


def cifar10_readable(data) -> bool:
  """Whether the prepared dataset of `data` (a `DataConfig`) can be read;
  if not, says so on stderr with the command that prepares it."""
  from autonl_tf.data import dataset_info
  try:
    dataset_info(data)
  except Exception as e:  # noqa: BLE001 - reported with the command that fixes it
    print(f"error: {data.dataset} is not readable in {data.data_dir} ({e}); run "
          f"`python tools/prepare_data.py --dataset={data.dataset} --data_dir={data.data_dir}`",
          file=sys.stderr)
    return False
  return True


def data_config(seed, quick, data_dir):
  """CIFAR-10 at 32px from `data_dir` with data seed `seed`, or synthetic
  data of the same shape with --quick."""
  from autonl_tf.data import DataConfig
  if quick:
    return DataConfig("synthetic", input_size=32, num_classes=10, seed=seed)
  return DataConfig("cifar10", data_dir=data_dir, input_size=32, seed=seed)


def record_dir(flag: Optional[str], quick, name) -> Optional[str]:
  """--record_dir's value `flag` ('' for none), or its default:
  `docs/records/<name>`, none with --quick."""
  if flag is not None:
    return flag or None
  return None if quick else os.path.join("docs", "records", name)


def pin_arch_file(path, arch, planned) -> str:
  """Writes `arch` to `path` (an arch file a run trains) unless `path`
  already holds another network: a preset or space that changed under a
  resumed benchmark would mix two networks in its runs (`planned`: what the
  code plans, for the error). Returns `path`."""
  from autonl_tf import arch as arch_lib
  from autonl_tf import io
  text = arch_lib.format_arch(arch)
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      if f.read() != text:
        raise ValueError(f"{path} holds another network than {planned}; pass another --workdir")
  io.write_text(path, text)
  return path
