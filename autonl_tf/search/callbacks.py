"""Callbacks of a search: the warm-up / search switch, the record of the
visited states the landing chooses from (`search.landing`), and the logs.

Log schema (read by `autonl_tf.viz`):
* `search_log.csv`, one row per epoch: `epoch`, `derived_macs` (and
  `derived_latency_ms` with the latency cost model), the epoch's metrics,
  `lambda_now` (lambda at the end of the epoch) and one
  `<block>/<decision>` column per gate (e.g. `sblock_3/e_small`), valued 0.0
  or 1.0 as the architecture has it (nested decisions multiplied in);
* `margins.csv`, one row per step: `step`, `epoch`, `macs` (`latency_ms`
  with the latency cost model: the priced quantity), `lambda`, and
  every decision's margin `value - threshold` (> 0: on) under its
  `<block>/<decision>` name; the same margins as TensorBoard scalars
  `margin/<block>/<decision>` in `tensorboard/decisions`.
A resumed search first drops the rows of the steps it repeats.
"""

import csv
import os

import keras
import tensorflow as tf

from autonl_tf import flops
from autonl_tf import io
from autonl_tf import run_files
from autonl_tf.search import landing as landing_lib


class SearchPhase(keras.callbacks.Callback):
  """Warm-up control: cost off, architecture frozen, gate dropout on, before
  `supernet_warmup_epochs`; the search proper after. When the search proper starts,
  every decision is put on the same starting line (`SuperNet.reset_margins`)
  and the architecture optimizer's step counter restarts at 0, so that its
  cosine schedule spans the search proper (warm-up steps apply zero
  gradients)."""

  def __init__(self, supernet_warmup_epochs, gate_dropout):
    super().__init__()
    self.supernet_warmup_epochs = supernet_warmup_epochs
    self.gate_dropout = gate_dropout

  def on_epoch_begin(self, epoch, logs=None):
    warm = epoch < self.supernet_warmup_epochs
    self.model.search_phase.assign(0.0 if warm else 1.0)
    self.model.dropout_var.assign(self.gate_dropout if warm else 0.0)
    if epoch == self.supernet_warmup_epochs:
      self.model.reset_margins()
      self.model.arch_optimizer.iterations.assign(0)


def _step_trace(model):
  """`model.trace()` after the current training step, computed once per step
  however many callbacks ask (`MarginLog`, `LandingLog`)."""
  step = int(model.optimizer.iterations.numpy())
  cached = getattr(model, "_step_trace_cache", None)
  if cached is None or cached[0] != step:
    cached = (step, model.trace())
    model._step_trace_cache = cached
  return cached[1]


def _keep_rows(path, column, last):
  """Rewrites the CSV at `path` without the rows whose `column` exceeds `last`."""
  if not os.path.exists(path):
    return
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  if not rows or column not in rows[0]:
    return
  i = rows[0].index(column)
  kept = [rows[0]] + [r for r in rows[1:] if r and float(r[i]) <= last]
  if len(kept) != len(rows):
    with io.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
      csv.writer(f).writerows(kept)


def _append_row(path, row):
  """Appends `row` (a dict) to the CSV at `path`, keeping an existing file's
  columns in their order."""
  new = not os.path.exists(path)
  fields = list(row)
  if not new:
    with open(path, newline="") as f:
      fields = next(csv.reader(f), None) or fields
  with open(path, "a", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields, restval="", extrasaction="ignore")
    if new:
      w.writeheader()
    w.writerow(row)


class DecisionLog(keras.callbacks.Callback):
  """After each epoch: one `search_log.csv` row (epoch, metrics, MACs,
  lambda, every gate) and the same values as TensorBoard scalars."""

  def __init__(self, model_dir, is_chief=True):
    super().__init__()
    self.path = os.path.join(model_dir, run_files.SEARCH_LOG)
    self.writer = tf.summary.create_file_writer(
        os.path.join(model_dir, run_files.TENSORBOARD, "decisions")) \
        if is_chief else None
    self.is_chief = is_chief

  def on_epoch_begin(self, epoch, logs=None):
    if self.is_chief:
      _keep_rows(self.path, "epoch", epoch)

  def on_epoch_end(self, epoch, logs=None):
    if not self.is_chief:
      return
    row = {"epoch": epoch + 1, "derived_macs": flops.count(self.model.derive(), self.model.input_size,
                                                           self.model.num_classes).macs}
    if self.model.cost_model == "latency":
      row["derived_latency_ms"] = float(self.model.latency())
    row.update({k: float(v) for k, v in (logs or {}).items()})
    row["lambda_now"] = float(self.model.lam.numpy())
    for block, ds in self.model.decisions().items():
      for d, v in ds.items():
        row[f"{block}/{d}"] = v["gate"]
    _append_row(self.path, row)
    with self.writer.as_default(step=epoch + 1):
      for k, v in row.items():
        if k != "epoch":
          tf.summary.scalar(k, v)
    self.writer.flush()


class MarginLog(keras.callbacks.Callback):
  """After every step: every decision's margin, the priced quantity (MACs or
  ms) and lambda, as a
  `margins.csv` row and TensorBoard scalars (`tensorboard/decisions`)."""

  def __init__(self, model_dir, is_chief=True):
    super().__init__()
    self.path = os.path.join(model_dir, run_files.MARGINS)
    self.logdir = os.path.join(model_dir, run_files.TENSORBOARD, "decisions")
    self.is_chief = is_chief
    self.writer = None
    self.epoch = 0

  def on_train_begin(self, logs=None):
    if not self.is_chief:
      return
    _keep_rows(self.path, "step", int(self.model.optimizer.iterations.numpy()))
    self.writer = tf.summary.create_file_writer(self.logdir)
    self.names = self.model.decision_names

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    if not self.is_chief:
      return
    margins, _, value = _step_trace(self.model)
    step = int(self.model.optimizer.iterations.numpy())
    lam = float(self.model.lam.numpy())
    unit = self.model.cost_unit
    row = {"step": step, "epoch": self.epoch + 1, unit: value, "lambda": lam}
    row.update({n: round(float(m), 6) for n, m in zip(self.names, margins)})
    _append_row(self.path, row)
    with self.writer.as_default(step=step):
      tf.summary.scalar(f"step/{unit}", value)
      tf.summary.scalar("step/lambda", lam)
      for n, m in zip(self.names, margins):
        tf.summary.scalar(f"margin/{n}", float(m))

  def on_epoch_end(self, epoch, logs=None):
    if self.writer is not None:
      self.writer.flush()


class LandingLog(keras.callbacks.Callback):
  """`target` mode: records every hard architecture visited after each step
  of the search proper in a `landing.Landing` (`visited`), from which
  `landing.land` chooses. Its state goes into the backup (`get_state` /
  `set_state`, through `ChiefBackupAndRestore(extra_state=...)`), so that a
  resumed search lands as the uninterrupted one would."""

  def __init__(self, epochs, supernet_warmup_epochs, tolerance):
    super().__init__()
    self.first = min(epochs - 1, supernet_warmup_epochs)
    self.tolerance = tolerance
    self.visited = None
    self._active = False
    self.epoch = 0

  def get_state(self):
    return self.visited.to_json() if self.visited else None

  def set_state(self, state):
    self.visited = landing_lib.Landing.from_json(state) if state else None

  def on_train_begin(self, logs=None):
    if self.visited is None:  # else restored from the backup
      self.visited = landing_lib.Landing(self.model.decision_names, self.tolerance)

  def on_epoch_begin(self, epoch, logs=None):
    self._active = epoch >= self.first
    self.epoch = epoch + 1

  def on_train_batch_end(self, batch, logs=None):
    if self._active:
      _, bits, value = _step_trace(self.model)
      self.visited.record(self.epoch, bits, value, self.model.target)
