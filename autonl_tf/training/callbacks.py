"""Callbacks for long, resumable runs."""

import glob
import math
import os
import time

import keras

from autonl_tf import io
from autonl_tf import run_files


class LossIsNaN(RuntimeError):
  """Raised when the training loss is NaN/inf; no checkpoint of that epoch is written."""


class StopOnNaN(keras.callbacks.TerminateOnNaN):
  """`TerminateOnNaN` that aborts the epoch at once by raising `LossIsNaN`.

  Keras' own callback only sets `stop_training`, and the epoch-end callbacks
  (checkpoints, backups) would still save the NaN weights; raising keeps the
  last good checkpoint as the latest one.
  """

  def on_batch_end(self, batch, logs=None):
    loss = (logs or {}).get("loss")
    if loss is not None and not math.isfinite(float(loss)):
      raise LossIsNaN(f"training loss became {loss} at batch {batch}; the last good "
                      "checkpoint is kept")


class EpochCheckpoint(keras.callbacks.Callback):
  """Saves weights + optimizer state (EMA included) every epoch as
  `<directory>/epoch_<NNN>.weights.h5`, atomically, keeping the newest `keep`.

  Only the chief writes (pass `is_chief=False` on other workers).
  """

  def __init__(self, directory, keep=3, is_chief=True):
    super().__init__()
    self.directory = directory
    self.keep = keep
    self.is_chief = is_chief

  def on_epoch_end(self, epoch, logs=None):
    if not self.is_chief:
      return
    os.makedirs(self.directory, exist_ok=True)
    io.save_weights(self.model, os.path.join(self.directory, run_files.checkpoint(epoch + 1)))
    for old in sorted(glob.glob(os.path.join(self.directory, run_files.CHECKPOINT_GLOB)))[:-self.keep]:
      os.remove(old)


def chief_logging(model_dir, chief=True):
  """`log.csv` and TensorBoard summaries, written by the chief only."""
  if not chief:
    return []
  return [keras.callbacks.CSVLogger(os.path.join(model_dir, run_files.LOG), append=True),
          keras.callbacks.TensorBoard(os.path.join(model_dir, run_files.TENSORBOARD),
                                      write_graph=False)]


def latest_checkpoint(directory):
  paths = sorted(glob.glob(os.path.join(directory, run_files.CHECKPOINT_GLOB)))
  return paths[-1] if paths else None


class EpochSummary(keras.callbacks.Callback):
  """One concise line per epoch: the logs plus wall time, via `log`."""

  def __init__(self, log=print, keys=None):
    super().__init__()
    self.log = log
    self.keys = keys
    self._start = None

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.time()

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    keys = self.keys or sorted(logs)
    parts = []
    for k in keys:
      if k in logs:
        v = float(logs[k])
        parts.append(f"{k}={v:.4g}" if abs(v) < 1e5 else f"{k}={v:.4e}")
    self.log(f"epoch {epoch + 1}: " + " ".join(parts) + f" ({time.time() - self._start:.1f}s)")
