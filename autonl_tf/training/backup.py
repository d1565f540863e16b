"""Chief-only backups for resumable runs, on one worker or many.

`ChiefBackupAndRestore` is Keras' `BackupAndRestore` made safe for several
workers: only the chief writes, atomically, and every worker restores from
the chief's files, so a killed worker that is restarted rejoins at the last
completed epoch. `ResumeLog` says where a run started.
"""

import os
import shutil
import tempfile
import warnings

import keras

from autonl_tf import io


class BackupError(ValueError):
  """Neither the latest backup nor the previous one can be read."""


class ChiefBackupAndRestore(keras.callbacks.BackupAndRestore):
  """`BackupAndRestore` for one or many workers.

  Every worker restores from `backup_dir` at the start of `fit` (resuming at
  the last completed epoch with the optimizer state, step counter included);
  only the chief writes, and each file is written to a temporary name and
  renamed, so a kill mid-save leaves the previous backup intact. A kill
  between the weights' and the metadata's rename leaves weights one epoch
  newer than the metadata: the restored step counter (saved with the
  weights) then says which epoch to resume at.

  A backup that cannot be read (truncated, corrupt, another network's) is
  named in a warning (through `log`, else `warnings.warn`) before the run
  falls back to the previous epoch's backup; when that one cannot be read
  either, `BackupError` names both files.
  """

  def __init__(self, backup_dir, chief=True, save_freq="epoch", log=None):
    super().__init__(backup_dir, save_freq=save_freq, double_checkpoint=True,
                     delete_checkpoint=False)
    self.chief = chief
    self.log = log
    self.restored_epoch = 0
    self.restored_step = 0

  def _warn(self, message):
    if self.log:
      self.log(message)
    else:
      warnings.warn(message, stacklevel=2)

  def _restore(self):
    """Keras' restore, with the fallback to the previous backup said aloud;
    returns the metadata file that was read."""
    meta = self._training_metadata_path
    try:
      self._load_model()
      return meta
    except Exception as e:  # h5py: OSError; a different network: ValueError  # noqa: BLE001
      error = _first_line(e)
    latest, prev = self._weights_path, self._prev_weights_path
    if not os.path.exists(prev):
      raise BackupError(f"backup {latest} cannot be read ({error}) and there is no older "
                            f"backup: move {self.backup_dir} away to train from scratch") from None
    self._warn(f"warning: backup {latest} cannot be read ({error}); falling back to the "
               f"previous epoch's backup {prev}")
    prev_meta = self._prev_training_metadata_path
    with tempfile.TemporaryDirectory() as tmp:  # Keras loads *.weights.h5 names only
      self._weights_path = os.path.join(tmp, "previous.weights.h5")
      self._training_metadata_path = prev_meta
      try:
        shutil.copyfile(prev, self._weights_path)
        self._load_model()
      except Exception as e:  # noqa: BLE001
        raise BackupError(f"backup {latest} cannot be read ({error}), nor the previous one "
                              f"{prev} ({_first_line(e)}): move {self.backup_dir} away to train "
                              "from scratch") from None
      finally:
        self._weights_path, self._training_metadata_path = latest, meta
    if self.chief:  # as in Keras, the older backup becomes the latest
      io.copy_file(prev, latest)
      if os.path.exists(prev_meta):
        io.copy_file(prev_meta, meta)
      elif os.path.exists(meta):
        os.remove(meta)
    return prev_meta

  def on_train_begin(self, logs=None):
    meta_path = self._restore()
    self.restored_step = int(self.model.optimizer.iterations.numpy())
    meta = io.read_json(meta_path) if os.path.exists(meta_path) else None
    steps = (self.params or {}).get("steps")
    if meta and "step" in meta and self.restored_step != meta["step"] and steps:
      self.model._initial_epoch = meta["epoch"] + round((self.restored_step - meta["step"]) / steps)
    self.restored_epoch = int(getattr(self.model, "_initial_epoch", None) or 0)

  def _save_model(self):
    if not self.chief:
      return
    os.makedirs(self.backup_dir, exist_ok=True)
    if os.path.exists(self._weights_path):
      io.copy_file(self._weights_path, self._prev_weights_path)
    if os.path.exists(self._training_metadata_path):
      io.copy_file(self._training_metadata_path, self._prev_training_metadata_path)
    io.save_weights(self.model, self._weights_path)
    io.write_json(self._training_metadata_path,
                  {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                   "step": int(self.model.optimizer.iterations.numpy())})


def _first_line(error) -> str:
  return (str(error).strip().splitlines() or [type(error).__name__])[0]


class ResumeLog(keras.callbacks.Callback):
  """Prints where a run starts: fresh, or resumed at epoch N / step S."""

  def __init__(self, backup: ChiefBackupAndRestore, log=print):
    super().__init__()
    self.backup = backup
    self.log = log

  def on_train_begin(self, logs=None):
    if self.backup.restored_epoch or self.backup.restored_step:
      self.log(f"resumed from {self.backup.backup_dir}: epoch {self.backup.restored_epoch}, "
               f"optimizer step {self.backup.restored_step}")
