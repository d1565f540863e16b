"""Training with the MnasNet / AutoNL recipe (arXiv 2004.01961, section 5,
"Experiments": MnasNet's ImageNet settings) through `model.fit`, resumable
after a kill."""

import dataclasses
import os
import time
from typing import Optional, Sequence

import keras
import tensorflow as tf

from autonl_tf import arch as arch_lib
from autonl_tf import distribute
from autonl_tf import flops
from autonl_tf import io
from autonl_tf import run_files
from autonl_tf.data import datasets
from autonl_tf.models import anchors
from autonl_tf.models.network import build_model
from autonl_tf.training import callbacks as cb
from autonl_tf.training import evaluation
from autonl_tf.training import fit_loop
from autonl_tf.training.losses import SparseLabelSmoothingCrossEntropy, apply_weight_decay
from autonl_tf.training import optimizers
from autonl_tf.training.config import TrainConfig
from autonl_tf.training.optimizers import OPTIMIZERS
from autonl_tf.training.schedules import learning_rate_schedule


def validate(config: TrainConfig):
  checks = [(config.batch_size >= 1, "batch_size must be positive"),
            (config.epochs >= 1, "epochs must be positive"),
            (config.steps_per_epoch is None or config.steps_per_epoch >= 1,
             "steps_per_epoch must be positive"),
            (0 <= config.ema_momentum < 1, "ema_momentum must be in [0, 1)"),
            (0 <= config.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (config.weight_decay >= 0, "weight_decay must be >= 0"),
            (config.lr_per_256 > 0, "lr_per_256 must be positive"),
            (config.optimizer in OPTIMIZERS,
             f"optimizer must be one of {', '.join(OPTIMIZERS)}, got '{config.optimizer}'"),
            (0 <= config.momentum < 1, "momentum must be in [0, 1)"),
            (config.precision in distribute.PRECISIONS,
             f"precision must be one of {', '.join(distribute.PRECISIONS)}")]
  for ok, message in checks:
    if not ok:
      raise ValueError(message)
  # A bad arch fails before any data is read.
  if anchors.is_anchor(config.arch):
    anchors.parse(config.arch)
  else:
    arch_lib.load(config.arch, config.arch_limits)


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
  schedule = learning_rate_schedule(
      config.lr_schedule, config.lr_per_256, config.batch_size, steps_per_epoch,
      config.epochs, config.lr_warmup_epochs, config.lr_decay_rate, config.lr_decay_epochs)
  return optimizers.make(config.optimizer, schedule, momentum=config.momentum,
                         nesterov=config.nesterov, rho=config.rmsprop_rho,
                         epsilon=config.epsilon, ema_momentum=config.ema_momentum)


def build_and_compile(config: TrainConfig, num_classes: int, steps_per_epoch: int):
  """The model, compiled with the recipe's loss, optimizer and metrics."""
  size = config.data.input_size
  with distribute.precision(config.precision):
    if anchors.is_anchor(config.arch):
      model = anchors.build_anchor(config.arch, (size, size, 3), num_classes,
                                   config.dropout_rate, config.bn_momentum)
    else:
      model = build_model(arch_lib.load(config.arch, config.arch_limits), (size, size, 3),
                          num_classes, config.dropout_rate, config.drop_connect_rate,
                          config.bn_momentum, sync_bn=config.sync_bn,
                          arch_limits=config.arch_limits)
  apply_weight_decay(model, config.weight_decay)
  model.compile(
      optimizer=make_optimizer(config, steps_per_epoch),
      loss=SparseLabelSmoothingCrossEntropy(config.label_smoothing),
      # `loss` includes label smoothing and weight decay; `ce` is the plain
      # cross-entropy (chance: log(num_classes)).
      metrics=[keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="ce"),
               keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
               keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
      jit_compile=config.jit_compile)
  return model


FINISHED_RUN = (run_files.FINAL_MODEL, run_files.METRICS)
RUN_STATE = (run_files.METRICS, run_files.BACKUP, run_files.CHECKPOINTS, run_files.LOG,
             run_files.TENSORBOARD)


def finished_metrics(model_dir: str) -> Optional[dict]:
  """The metrics of the finished run in `model_dir` (both `final.keras` and
  `metrics.json` there), else None."""
  if not all(os.path.exists(os.path.join(model_dir, f)) for f in FINISHED_RUN):
    return None
  try:
    return io.read_json(os.path.join(model_dir, run_files.METRICS))
  except ValueError as e:
    raise ValueError(f"{os.path.join(model_dir, run_files.METRICS)} is not valid JSON ({e}): "
                     "pass --retrain to "
                     "train again into it") from None


def _clear_run_state(model_dir: str, log):
  """Removes a previous run's state so that training starts at epoch 0;
  `final.keras` stays until the new one replaces it."""
  import shutil
  removed = []
  for name in RUN_STATE:  # metrics.json first: from then on the run is not finished
    path = os.path.join(model_dir, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)
    else:
      continue
    removed.append(name)
  if removed:
    log(f"retrain: removed the previous run's {', '.join(removed)} from {model_dir}")


def _finished_or_cleared(model_dir: str, retrain: bool, chief: bool, log) -> Optional[dict]:
  """The metrics of the finished run in `model_dir`, said in one line, unless
  `retrain` (then the chief removes the previous run's state); else None."""
  if retrain:
    if chief and os.path.isdir(model_dir):
      _clear_run_state(model_dir, log)
    return None
  done = finished_metrics(model_dir)
  if done is not None:
    log(f"{model_dir} holds a finished run ({run_files.FINAL_MODEL}, {run_files.METRICS}: top-1 "
        f"{done.get('top1', float('nan')):.2f} after {done.get('epochs')} epochs): left as "
        "it is; pass --retrain to train again into it")
  return done


def _validation_data(config: TrainConfig, data, strategy):
  """The per-epoch validation stream of `config.validation_split` (None
  without one). TPUs need static shapes: there the last partial batch is
  dropped (a few images of the per-epoch check; the final evaluation runs
  outside the strategy on every image)."""
  if not config.validation_split:
    return None
  return datasets.distributed_dataset(
      strategy, data, config.validation_split, config.batch_size, False,
      drop_remainder=isinstance(strategy, tf.distribute.TPUStrategy))


def _recalibrate_and_evaluate(model, config: TrainConfig, data, info, log):
  """Re-estimates the batch-norm statistics on `config.bn_recalibration_batches`
  training batches (0: none), then evaluates on `config.eval_split`.

  Returns:
    (the batches recalibrated on, `evaluation.evaluate`'s result)."""
  recalibrated = 0
  if config.bn_recalibration_batches > 0:
    recal_ds = datasets.make_dataset(data, "train", config.batch_size, training=True)
    recalibrated = evaluation.recalibrate_batch_norm(model, recal_ds,
                                                     config.bn_recalibration_batches)
  eval_ds = datasets.make_dataset(data, config.eval_split, config.batch_size, training=False)
  total = evaluation.examples_seen(info.split_sizes[config.eval_split], config.eval_steps,
                                   config.batch_size)
  return recalibrated, evaluation.evaluate(evaluation.keras_predict_fn(model), eval_ds,
                                           config.eval_steps, total, log=log)


def train(config: TrainConfig, strategy: Optional[tf.distribute.Strategy] = None,
          extra_callbacks: Sequence[keras.callbacks.Callback] = (), log=print,
          retrain: bool = False) -> dict:
  """Trains, evaluates with the EMA weights, writes `final.keras` and
  `metrics.json` into `config.model_dir`. A rerun after a kill resumes from
  the last completed epoch (BackupAndRestore); a rerun of a finished run
  (both files there) says so and returns its metrics, leaving everything as
  it is, unless `retrain`: then the previous run's state is removed and
  training starts again at epoch 0.

  Returns:
    the metrics dict written to `metrics.json`.
  """
  validate(config)
  strategy = strategy or tf.distribute.get_strategy()
  chief = distribute.is_chief(strategy)
  quiet = log or (lambda _: None)
  done = _finished_or_cleared(config.model_dir, retrain, chief, quiet)
  if done is not None:
    return done
  start = time.time()
  info = datasets.dataset_info(config.data)
  num_classes = info.num_classes
  data = dataclasses.replace(config.data, num_classes=num_classes)
  steps_per_epoch = fit_loop.steps_per_epoch(info, config.steps_per_epoch, config.batch_size)
  arch = count = None
  if not anchors.is_anchor(config.arch):
    arch = arch_lib.load(config.arch, config.arch_limits)
    count = flops.check_limits(arch, data.input_size, num_classes, config.arch_limits)
  os.makedirs(config.model_dir, exist_ok=True)
  if chief:
    io.write_json(os.path.join(config.model_dir, run_files.CONFIG), dataclasses.asdict(config))

  loop = fit_loop.FitLoop(config.model_dir, strategy, log)
  train_ds = loop.train_data(data, config.batch_size)
  val_ds = _validation_data(config, data, strategy)
  if arch is not None:
    quiet(f"building {sum(b.repeats for b in arch.blocks)} blocks at {data.input_size}x"
          f"{data.input_size}: {count.macs / 1e6:.1f}M MACs, {count.params / 1e6:.2f}M params")
  with strategy.scope():
    model = build_and_compile(config, num_classes, steps_per_epoch)
  history = loop.fit(
      model, train_ds, config.epochs, steps_per_epoch, verbose=config.verbose,
      state=[cb.EpochCheckpoint(os.path.join(config.model_dir, run_files.CHECKPOINTS),
                                config.checkpoints_to_keep, is_chief=chief)],
      summary_keys=["loss", "ce", "accuracy", "top5", "val_loss", "val_ce", "val_accuracy",
                    "val_top5", "learning_rate"],
      extra=extra_callbacks, validation_data=val_ds, validation_steps=config.validation_steps)
  train_time = time.time() - start
  # fit() ends with optimizer.finalize_variable_values: with EMA on, the model
  # now holds the EMA weights, and those are what gets evaluated and saved.
  recalibrated, result = _recalibrate_and_evaluate(model, config, data, info, log)
  if arch is None:  # a keras.applications anchor
    params = anchors.keras_model_params(model)
    macs, arch_text = anchors.keras_model_macs(model), config.arch
  else:
    macs, params, arch_text = count.macs, count.params, arch_lib.format_arch(arch)
  metrics = {
      "top1": result["top1"], "top5": result["top5"], "eval_examples": result["examples"],
      "max_abs_logit": result["max_abs_logit"], "non_finite_logits": result["non_finite"],
      "eval_split": config.eval_split, "dataset": data.dataset,
      "macs": macs, "params": params, "epochs": config.epochs,
      "steps_per_epoch": steps_per_epoch,
      "optimizer_steps": int(model.optimizer.iterations.numpy()),
      "epochs_run_this_session": len(history.epoch),
      "resumed_from_step": loop.backup.restored_step,
      "replicas": strategy.num_replicas_in_sync, "precision": config.precision,
      "wall_time_s": round(time.time() - start, 1),
      "train_time_s": round(train_time, 1), "ema": config.ema_momentum > 0,
      "bn_recalibration_batches": recalibrated,
      "input_size": data.input_size, "num_classes": num_classes, "arch": config.arch,
      "arch_text": arch_text,
  }
  if chief:
    io.save_model(model, os.path.join(config.model_dir, run_files.FINAL_MODEL))
    io.write_json(os.path.join(config.model_dir, run_files.METRICS), metrics)
  return metrics
