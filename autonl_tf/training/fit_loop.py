"""The skeleton that training and the search share: the steps per epoch, a
training stream that resumes where a killed run stopped, the backup, the
callbacks every run has, and `fit`.

A run uses it in three steps, so that what it builds in between (validation
data, the model, its own callbacks) keeps its place::

  loop = FitLoop(model_dir, strategy, log)        # reads the backup's step
  train_ds = loop.train_data(data, batch_size)    # skips the consumed batches
  with strategy.scope():
    model = ...
  history = loop.fit(model, train_ds, epochs, steps, summary_keys=[...])
"""

import os
from typing import Optional, Sequence

import keras
import tensorflow as tf

from autonl_tf import distribute
from autonl_tf import run_files
from autonl_tf.data import datasets
from autonl_tf.training import callbacks as cb
from autonl_tf.training.backup import ChiefBackupAndRestore, ResumeLog, saved_step


def steps_per_epoch(info: datasets.DatasetInfo, steps: Optional[int], batch_size: int) -> int:
  """`steps` if set, else the full batches in the train split of `info`;
  a ValueError when the split is unknown or smaller than one batch."""
  if steps:
    return steps
  size = info.split_sizes.get("train")
  if size is None:
    raise ValueError(f"the size of {info.name}'s train split is unknown: set steps_per_epoch")
  if size // batch_size < 1:
    raise ValueError(f"the train split has {size} examples, fewer than one batch of "
                     f"{batch_size}: set steps_per_epoch or a smaller batch_size")
  return size // batch_size


class FitLoop:
  """One resumable `fit` into `model_dir` under `strategy`.

  `data_step` is the optimizer step of the backup a rerun restores (0 for a
  new run): the batches per replica the training stream skips, so that a
  resumed run goes on as the uninterrupted one would have."""

  def __init__(self, model_dir: str, strategy: tf.distribute.Strategy, log=print):
    self.model_dir = model_dir
    self.strategy = strategy
    self.chief = distribute.is_chief(strategy)
    self.log = log
    self.quiet = log or (lambda _: None)
    self.backup_dir = os.path.join(model_dir, run_files.BACKUP)
    self.data_step = saved_step(self.backup_dir)
    self.backup = None

  def train_data(self, data: datasets.DataConfig, batch_size: int):
    """The distributed, shuffled training stream, after the consumed batches."""
    return datasets.distributed_dataset(self.strategy, data, "train", batch_size, True,
                                        skip_steps=self.data_step)

  def fit(self, model: keras.Model, train_ds, epochs: int, steps: int, *,
          summary_keys: Sequence[str], verbose="auto",
          first: Sequence[keras.callbacks.Callback] = (),
          state: Sequence[keras.callbacks.Callback] = (),
          logs: Sequence[keras.callbacks.Callback] = (),
          extra: Sequence[keras.callbacks.Callback] = (),
          extra_state: Optional[dict] = None, validation_data=None,
          validation_steps: Optional[int] = None) -> keras.callbacks.History:
    """`model.fit` with the callbacks in this order: `first`, the backup
    (holding `extra_state` too), where the run resumed, the NaN stop, `state`
    (what the run saves per epoch), `log.csv` and TensorBoard (chief only),
    `logs`, one summary line per epoch (`summary_keys`), `extra`."""
    self.backup = ChiefBackupAndRestore(self.backup_dir, self.chief, log=self.log,
                                        data_step=self.data_step, extra_state=extra_state)
    callbacks = [*first, self.backup, ResumeLog(self.backup, self.quiet), cb.StopOnNaN(),
                 *state, *cb.chief_logging(self.model_dir, self.chief), *logs,
                 cb.EpochSummary(self.quiet, list(summary_keys)), *extra]
    return model.fit(train_ds, epochs=epochs, steps_per_epoch=steps,
                     validation_data=validation_data, validation_steps=validation_steps,
                     callbacks=callbacks, verbose=verbose,
                     shuffle=False)  # the input pipeline shuffles
