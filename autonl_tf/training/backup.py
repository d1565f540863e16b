"""Chief-only backups for resumable runs, on one worker or many.

`ChiefBackupAndRestore` is Keras' `BackupAndRestore` made safe for several
workers: only the chief writes, atomically, and every worker restores from
the chief's files, so a killed worker that is restarted rejoins at the last
completed epoch. `ResumeLog` says where a run started.

A resumed run goes on as the uninterrupted one would have, bit for bit with a
fixed seed, when its input pipeline skips what was consumed: build it with
`skip_steps=saved_step(backup_dir)` (`data.datasets.distributed_dataset`).
The backup holds the random state of the layers (`SeedGenerator`s: dropout,
drop-connect, the search's gate dropout) besides weights and optimizer state.
"""

import os
import shutil
import tempfile
import warnings

import h5py
import keras
import numpy as np

from autonl_tf import io
from autonl_tf import run_files

#: Top-level group of the backup's weights file holding the model's
#: `SeedGenerator` states (`model.save_weights` leaves them out; Keras'
#: `load_weights` ignores the group).
SEED_STATES = "seed_generator_states"


def saved_step(backup_dir) -> int:
  """The optimizer step of the backup in `backup_dir` that a resumed run
  will restore (0: none): the number of batches per replica its input
  pipeline has to skip. Read before the model and the datasets are built:
  from the metadata, the previous backup's when the latest weights file
  cannot be opened (the restore falls back to it); `ChiefBackupAndRestore`
  warns when the step it restores is another."""
  meta = os.path.join(backup_dir, run_files.BACKUP_METADATA)
  weights = os.path.join(backup_dir, run_files.BACKUP_WEIGHTS)
  if os.path.exists(weights):
    try:
      h5py.File(weights, "r").close()
    except OSError:  # truncated or corrupt
      meta += ".bkp"
  if not os.path.exists(meta):
    return 0
  try:
    return int(io.read_json(meta).get("step", 0))
  except (ValueError, OSError, TypeError, AttributeError):
    return 0


def _seed_state_variables(model):
  """The state variables of every `SeedGenerator` in `model` (the part of
  `model.variables` that `model.weights` leaves out), in a fixed order."""
  weights = {id(w) for w in model.weights}
  return [v for v in model.variables if id(v) not in weights]


def _save_seed_states(model, path):
  with h5py.File(path, "a") as f:
    group = f.create_group(SEED_STATES)
    for i, v in enumerate(_seed_state_variables(model)):
      group.create_dataset(str(i), data=np.asarray(v.numpy()))


def _load_seed_states(model, path) -> bool:
  """Restores the seed states saved with the weights; False when the file
  has none (a backup written before they were saved) or not as many."""
  variables = _seed_state_variables(model)
  with h5py.File(path, "r") as f:
    if SEED_STATES not in f or len(f[SEED_STATES]) != len(variables):
      return False
    values = [f[SEED_STATES][str(i)][()] for i in range(len(variables))]
  if any(tuple(v.shape) != np.shape(x) for v, x in zip(variables, values)):
    return False
  for v, x in zip(variables, values):
    v.assign(np.asarray(x).astype(v.dtype))
  return True


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

  `extra_state` ({name: object}) adds other objects' state to the backup:
  each object's `get_state()` (JSON-able) is saved with the metadata and
  handed back to its `set_state()` on restore (e.g. what a callback has
  gathered over the epochs so far).

  A backup that cannot be read (truncated, corrupt, another network's) is
  named in a warning (through `log`, else `warnings.warn`) before the run
  falls back to the previous epoch's backup; when that one cannot be read
  either, `BackupError` names both files.
  """

  def __init__(self, backup_dir, chief=True, save_freq="epoch", log=None, data_step=None,
               extra_state=None):
    super().__init__(backup_dir, save_freq=save_freq, double_checkpoint=True,
                     delete_checkpoint=False)
    self.chief = chief
    self.log = log
    self.data_step = data_step  # the steps the input pipeline skipped (saved_step)
    self.extra_state = dict(extra_state or {})
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

  def _load_model(self):
    super()._load_model()
    if os.path.exists(self._weights_path) and not _load_seed_states(self.model,
                                                                    self._weights_path):
      self._warn(f"warning: backup {self._weights_path} holds no random-layer (SeedGenerator) "
                 "state: dropout masks will not repeat the uninterrupted run's")

  def on_train_begin(self, logs=None):
    if self.chief:  # the half-written weights of a run killed while it saved
      io.remove_stale_temporaries(self.backup_dir)
    meta_path = self._restore()
    self.restored_step = int(self.model.optimizer.iterations.numpy())
    if self.data_step is not None and self.data_step != self.restored_step:
      self._warn(f"warning: the input pipeline skipped {self.data_step} steps but the backup "
                 f"restored step {self.restored_step}: the resumed run sees other batches "
                 "than the uninterrupted one would have")
    meta = io.read_json(meta_path) if os.path.exists(meta_path) else None
    for name, obj in self.extra_state.items():
      if meta and name in meta.get("extra_state", {}):
        obj.set_state(meta["extra_state"][name])
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
    with io.atomic_path(self._weights_path, suffix=".weights.h5") as tmp:
      self.model.save_weights(tmp)
      _save_seed_states(self.model, tmp)
    meta = {"epoch": self._current_epoch, "batch": self._last_batch_seen,
            "step": int(self.model.optimizer.iterations.numpy())}
    if self.extra_state:
      meta["extra_state"] = {name: obj.get_state() for name, obj in self.extra_state.items()}
    io.write_json(self._training_metadata_path, meta)


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
