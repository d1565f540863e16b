"""Runs a search end to end: data, supernet, warm-up, the NAS objective,
checkpoints / resume, logs, and the derived `arch.txt` (issue: the search)."""

import csv
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
from autonl_tf.data import pipeline
from autonl_tf.search.derive import write_derived
from autonl_tf.search.model import SuperNet
from autonl_tf.search.space import get_space
from autonl_tf.training import callbacks as cb
from autonl_tf.training.backup import ChiefBackupAndRestore, ResumeLog, saved_step
from autonl_tf.training.losses import apply_weight_decay
from autonl_tf.training import optimizers


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """Attributes:
    space: search space name (`autonl-imagenet`, `cifar`).
    data: what to read.
    model_dir: output directory.
    epochs / warmup_epochs / steps_per_epoch / batch_size: the schedule.
    cost: `log` or `target`; target_macs: the budget of `target` mode.
    lam: lambda (its start value in `target` mode); dual_lr: lambda's step;
      penalty: the augmented Lagrangian's quadratic weight.
    optimizer / momentum / nesterov: the weights' optimizer (`rmsprop`, the
      TF1-style RMSProp of the paper's recipe, or `sgd`; see
      `training.recipes`).
    lr / arch_lr: learning rates of weights (per 256 images, linear
      warm-up over `lr_warmup_epochs`, then cosine)
      and of architecture variables (plain SGD, cosine over the search
      epochs: steps proportional to the gradient, so the architecture
      settles instead of oscillating around the target).
    weight_decay: L2 on conv/dense kernels; label_smoothing.
    gate_dropout: warm-up gate dropout probability.
    jit_compile: XLA-compile the search step.
    precision: `float32`, `mixed_bfloat16` or `mixed_float16` (see
      `distribute.precision`); architecture variables, gates and MACs stay
      float32.
    sync_bn: batch-norm statistics over all replicas.
  """
  space: str
  data: pipeline.DataConfig
  model_dir: str
  epochs: int = 10
  warmup_epochs: int = 2
  steps_per_epoch: Optional[int] = None
  batch_size: int = 128
  cost: str = "log"
  target_macs: Optional[float] = None
  lam: float = 0.05
  dual_lr: float = 0.05
  penalty: float = 5.0
  optimizer: str = "rmsprop"
  momentum: float = 0.9
  nesterov: bool = False
  lr: float = 0.032
  lr_warmup_epochs: float = 1.0
  arch_lr: float = 1.0
  weight_decay: float = 1e-5
  label_smoothing: float = 0.1
  gate_dropout: float = 0.1
  jit_compile: bool = False
  precision: str = "float32"
  sync_bn: bool = False
  verbose: int = 2


class SearchPhase(keras.callbacks.Callback):
  """Warm-up control: cost off, arch frozen, gate dropout on, before
  `warmup_epochs`; the search proper after."""

  def __init__(self, warmup_epochs, gate_dropout):
    super().__init__()
    self.warmup_epochs = warmup_epochs
    self.gate_dropout = gate_dropout

  def on_epoch_begin(self, epoch, logs=None):
    warm = epoch < self.warmup_epochs
    self.model.search_phase.assign(0.0 if warm else 1.0)
    self.model.dropout_var.assign(self.gate_dropout if warm else 0.0)


class Landing(keras.callbacks.Callback):
  """Target mode: after every step of the search proper (from its second
  epoch on, or in the final epoch when there is only one), remembers the
  latest hard architecture whose MACs are within `tolerance` of the target
  (else the closest one seen), and that is what the search derives.

  The dual-ascent controller keeps the architecture circling the budget,
  often between two neighbouring discrete states a few percent either side
  of it; the last step alone would land on whichever state it happens to be.
  The weights are shared, so any visited architecture is as well trained as
  the last one.
  """

  def __init__(self, epochs, warmup_epochs, tolerance=0.03):
    super().__init__()
    self.first = min(epochs - 1, warmup_epochs + 1)
    self.tolerance = tolerance
    self.best = None  # (within tolerance, -distance, arch)
    self._active = False

  def on_epoch_begin(self, epoch, logs=None):
    self._active = epoch >= self.first

  def get_state(self):  # kept in the backup: a resumed search lands as the whole one would
    return self.best and [self.best[0], self.best[1], arch_lib.format_arch(self.best[2])]

  def set_state(self, state):
    self.best = state and (state[0], state[1], arch_lib.parse_arch(state[2]))

  def on_train_batch_end(self, batch, logs=None):
    if not self._active:
      return
    net = self.model
    distance = abs(float(net.macs()) / net.target_macs - 1.0)
    within = distance <= self.tolerance
    if self.best is None or within or (not self.best[0] and distance < -self.best[1]):
      self.best = (within, -distance, net.derive())


class DecisionLog(keras.callbacks.Callback):
  """After each epoch: one CSV row (epoch, metrics, MACs, lambda, every gate)
  in `search_log.csv`, and the same values as TensorBoard scalars."""

  def __init__(self, model_dir, is_chief=True):
    super().__init__()
    self.path = os.path.join(model_dir, "search_log.csv")
    self.writer = tf.summary.create_file_writer(os.path.join(model_dir, "tensorboard", "decisions")) \
        if is_chief else None
    self.is_chief = is_chief

  def on_epoch_end(self, epoch, logs=None):
    if not self.is_chief:
      return
    row = {"epoch": epoch + 1, "derived_macs": flops.count(self.model.derive(), self.model.input_size,
                                                           self.model.num_classes).macs}
    row.update({k: float(v) for k, v in (logs or {}).items()})
    row["lambda_now"] = float(self.model.lam.numpy())
    for block, ds in self.model.decisions().items():
      for d, v in ds.items():
        row[f"{block}/{d}"] = v["gate"]
    new = not os.path.exists(self.path)
    fields = list(row)
    if not new:  # appending (resumed run): keep the file's columns in their order
      with open(self.path, newline="") as f:
        fields = next(csv.reader(f), None) or fields
    with open(self.path, "a", newline="") as f:
      w = csv.DictWriter(f, fieldnames=fields, restval="", extrasaction="ignore")
      if new:
        w.writeheader()
      w.writerow(row)
    with self.writer.as_default(step=epoch + 1):
      for k, v in row.items():
        if k != "epoch":
          tf.summary.scalar(k, v)
    self.writer.flush()


def _cosine(peak, total_steps, warmup_steps):
  """Linear from 0 to `peak` over `warmup_steps`, then cosine to 0 at
  `total_steps`."""
  return keras.optimizers.schedules.CosineDecay(
      0.0 if warmup_steps else peak, max(1, total_steps - warmup_steps),
      warmup_target=peak if warmup_steps else None, warmup_steps=warmup_steps)


def build_supernet(config: SearchConfig, num_classes: int, steps_per_epoch: int) -> SuperNet:
  space = get_space(config.space)
  with distribute.precision(config.precision):
    net = SuperNet(space, config.data.image_size, num_classes, config.cost, config.target_macs,
                   config.lam, config.dual_lr, config.penalty, config.gate_dropout,
                   config.label_smoothing, sync_bn=config.sync_bn)
    net.build((None, config.data.image_size, config.data.image_size, 3))
  apply_weight_decay(net, config.weight_decay)
  peak = config.lr * config.batch_size / 256.0
  total = config.epochs * steps_per_epoch
  # The architecture step runs in every step (its gradients are zero during
  # the warm-up) and so advances its optimizer's step counter: its cosine
  # starts where the search proper starts, or it would reach 0 `warmup_epochs`
  # before the end and freeze the architecture for that long.
  weight_warm = int(config.lr_warmup_epochs * steps_per_epoch)
  arch_warm = config.warmup_epochs * steps_per_epoch
  net.compile(optimizer=optimizers.make(config.optimizer, _cosine(peak, total, weight_warm),
                                        momentum=config.momentum, nesterov=config.nesterov),
              arch_optimizer=keras.optimizers.SGD(_cosine(config.arch_lr, total, arch_warm)),
              jit_compile=config.jit_compile)
  return net


def search(config: SearchConfig, strategy: Optional[tf.distribute.Strategy] = None,
           extra_callbacks: Sequence[keras.callbacks.Callback] = (), log=print) -> dict:
  """Runs the search; returns the contents of `decisions.json`."""
  if config.cost == "target" and not config.target_macs:
    raise ValueError("cost=target needs target_macs (the MAC budget)")
  if config.epochs < 1 or config.warmup_epochs < 0 or config.batch_size < 1:
    raise ValueError("epochs and batch_size must be positive, warmup_epochs >= 0")
  get_space(config.space)
  strategy = strategy or tf.distribute.get_strategy()
  chief = distribute.is_chief(strategy)
  start = time.time()
  info = pipeline.dataset_info(config.data)
  data = dataclasses.replace(config.data, num_classes=info.num_classes)
  steps = config.steps_per_epoch or (info.split_sizes["train"] or 0) // config.batch_size
  if steps < 1:
    raise ValueError("set steps_per_epoch (the train split is smaller than a batch or unknown)")
  os.makedirs(config.model_dir, exist_ok=True)
  if chief:
    io.write_json(os.path.join(config.model_dir, "search_config.json"), dataclasses.asdict(config))
  backup_dir = os.path.join(config.model_dir, "backup")
  done = saved_step(backup_dir)  # a resumed run's data stream goes on after these steps
  train_ds = pipeline.distributed_dataset(strategy, data, "train", config.batch_size, True,
                                          skip_steps=done)
  with strategy.scope():
    net = build_supernet(config, info.num_classes, steps)
  quiet = log or (lambda _: None)
  landing = Landing(config.epochs, config.warmup_epochs) if config.cost == "target" else None
  backup = ChiefBackupAndRestore(backup_dir, chief, log=log, data_step=done,
                                 extra_state={"landing": landing} if landing else None)
  callbacks = [
      SearchPhase(config.warmup_epochs, config.gate_dropout),
      backup, ResumeLog(backup, quiet), cb.StopOnNaN(),
  ] + cb.chief_logging(config.model_dir, chief) + [
      DecisionLog(config.model_dir, chief),
      cb.EpochSummary(quiet, ["ce", "accuracy", "macs", "lambda"]),
  ] + ([landing] if landing else []) + list(extra_callbacks)
  net.fit(train_ds, epochs=config.epochs, steps_per_epoch=steps, callbacks=callbacks,
          verbose=config.verbose, shuffle=False)  # the input pipeline shuffles
  landed = landing.best[2] if landing and landing.best else None
  extra = {"search_time_s": round(time.time() - start, 1), "epochs": config.epochs,
           "steps_per_epoch": steps, "dataset": data.dataset}
  if chief:
    _, info_out = write_derived(net, config.model_dir, extra, arch=landed)
  else:  # the chief writes; the other workers report the same architecture
    count = flops.count(landed or net.derive(), data.image_size, info.num_classes)
    info_out = dict(extra, macs=count.macs, params=count.params)
  quiet(f"derived: {info_out.get('macs', 0) / 1e6:.2f}M MACs, "
        f"{info_out.get('params', 0) / 1e6:.2f}M params -> {config.model_dir}/arch.txt")
  return info_out
