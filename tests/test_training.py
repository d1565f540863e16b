"""The training recipe: loss goes down, EMA weights are evaluated, weight
decay skips BN and biases, resume after an interruption, clear errors."""

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import autonl_tf
from autonl_tf.data import DataConfig
from autonl_tf.training import (TrainConfig, WarmupExponentialDecay, apply_weight_decay,
                                learning_rate_schedule, train)
from autonl_tf.training import evaluation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
def tiny_config(tiny_arch, model_dir, **kw):
  base = dict(arch=tiny_arch, data=DataConfig("synthetic", input_size=8, num_classes=4, seed=0),
              model_dir=str(model_dir), batch_size=16, epochs=3, steps_per_epoch=8,
              lr_per_256=0.2, lr_warmup_epochs=0, ema_momentum=0.9, drop_connect_rate=0.0,
              dropout_rate=0.0, validation_split=None, eval_steps=4, verbose=0,
              bn_recalibration_batches=5)
  base.update(kw)
  return TrainConfig(**base)


def read_log(model_dir):
  with open(os.path.join(model_dir, "log.csv")) as f:
    return list(csv.DictReader(f))


def test_schedules_by_hand():
  s = WarmupExponentialDecay(peak=0.1, warmup_steps=10, decay_steps=24, decay_rate=0.97)
  assert float(s(5)) == pytest.approx(0.05)
  assert float(s(10)) == pytest.approx(0.1 * 0.97 ** 0)
  assert float(s(50)) == pytest.approx(0.1 * 0.97 ** 2)
  # lr per 256 images scales with the batch: 0.016 * 1024/256; 2.4 epochs of 100 steps.
  s = learning_rate_schedule("exponential", 0.016, 1024, 100, 350, 5)
  assert (s.peak, s.warmup_steps, s.decay_steps) == (pytest.approx(0.064), 500, pytest.approx(240))
  c = learning_rate_schedule("cosine", 0.016, 256, 10, 10, 1)
  assert float(c(10)) == pytest.approx(0.016) and float(c(100)) == pytest.approx(0.0, abs=1e-6)


def test_weight_decay_skips_bn_and_biases(tiny_arch):
  model = autonl_tf.build_model(tiny_arch, (8, 8, 3), 4)
  rng = np.random.default_rng(0)
  for w in model.weights:
    w.assign(rng.normal(size=w.shape).astype("float32"))
  apply_weight_decay(model, 1e-2)
  # Independent: every variable whose name is a conv/dense kernel, by path.
  kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
  others = [w for w in model.trainable_weights if not w.path.endswith("kernel")]
  assert any("gamma" in w.path for w in others) and any("bias" in w.path for w in others)
  want = 1e-2 / 2 * sum(float(np.sum(np.square(w.numpy()))) for w in kernels)
  assert float(sum(model.losses)) == pytest.approx(want, rel=1e-5)
  assert all(w.regularizer is None for w in others)


class RecordWeights(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.history = []

  def on_train_batch_end(self, batch, logs=None):
    self.history.append([w.numpy().copy() for w in self.model.trainable_weights])


def test_loss_decreases_and_ema_weights_are_evaluated(tiny_arch, tmp_path):
  recorder = RecordWeights()
  keras.utils.set_random_seed(0)
  metrics = train(tiny_config(tiny_arch, tmp_path / "run"), extra_callbacks=[recorder], log=None)
  log = read_log(tmp_path / "run")
  losses = [float(r["loss"]) for r in log]
  assert losses[-1] < 0.8 * losses[0], losses
  # EMA by hand (Keras: the first update copies, then m*avg + (1-m)*w).
  ema = [w.copy() for w in recorder.history[0]]
  for step in recorder.history[1:]:
    ema = [0.9 * a + 0.1 * w for a, w in zip(ema, step)]
  final = keras.saving.load_model(tmp_path / "run" / "final.keras", compile=False)
  for got, want in zip(final.trainable_weights, ema):
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)
  # ... and metrics.json is the evaluation of exactly those weights.
  from autonl_tf.data import make_dataset
  ds = make_dataset(DataConfig("synthetic", input_size=8, num_classes=4), "test", 16, training=False)
  again = evaluation.evaluate(evaluation.keras_predict_fn(final), ds, steps=4, log=None)
  saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
  assert saved["top1"] == pytest.approx(again["top1"]) and saved["top5"] == pytest.approx(again["top5"])
  assert saved["optimizer_steps"] == 24 and metrics["macs"] == saved["macs"] > 0


class Interrupt(keras.callbacks.Callback):
  def __init__(self, after_epoch):
    super().__init__()
    self.after_epoch = after_epoch

  def on_epoch_end(self, epoch, logs=None):
    if epoch + 1 == self.after_epoch:
      raise KeyboardInterrupt("simulated kill")


class EpochsStarted(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.epochs = []

  def on_epoch_begin(self, epoch, logs=None):
    self.epochs.append(epoch)


def test_resume_after_interruption(tiny_arch, tmp_path):
  config = tiny_config(tiny_arch, tmp_path / "run", epochs=4, steps_per_epoch=5)
  with pytest.raises(KeyboardInterrupt):
    train(config, extra_callbacks=[Interrupt(after_epoch=2)], log=None)
  assert [r["epoch"] for r in read_log(config.model_dir)] == ["0", "1"]
  assert not os.path.exists(os.path.join(config.model_dir, "final.keras"))
  started = EpochsStarted()
  metrics = train(config, extra_callbacks=[started], log=None)
  assert started.epochs == [2, 3]  # 0-based: it continues with the third epoch
  assert [r["epoch"] for r in read_log(config.model_dir)] == ["0", "1", "2", "3"]
  assert metrics["optimizer_steps"] == 4 * 5 and metrics["epochs_run_this_session"] == 2
  ckpts = sorted(os.listdir(os.path.join(config.model_dir, "checkpoints")))
  assert ckpts == ["epoch_002.weights.h5", "epoch_003.weights.h5", "epoch_004.weights.h5"]


def test_resume_after_a_kill_between_the_backup_renames(tiny_arch, tmp_path, monkeypatch):
  """The epoch-2 backup's weights are in place, its metadata still says epoch
  1: the run resumes at epoch 3 and ends with exactly 4 epochs of steps."""
  config = tiny_config(tiny_arch, tmp_path / "run", epochs=4, steps_per_epoch=5)
  replace, saves = os.replace, []

  def torn(src, dst):
    if os.path.basename(dst) == "training_metadata.json":
      saves.append(dst)
      if len(saves) == 2:
        raise KeyboardInterrupt("killed between the weights' and the metadata's rename")
    return replace(src, dst)

  monkeypatch.setattr(os, "replace", torn)
  with pytest.raises(KeyboardInterrupt):
    train(config, log=None)
  monkeypatch.undo()
  meta = json.loads((tmp_path / "run" / "backup" / "training_metadata.json").read_text())
  assert (meta["epoch"], meta["step"]) == (1, 5)  # the torn state
  started = EpochsStarted()
  metrics = train(config, extra_callbacks=[started], log=None)
  assert started.epochs == [2, 3]
  assert metrics["resumed_from_step"] == 10 and metrics["optimizer_steps"] == 4 * 5


def test_rerun_of_a_finished_run_leaves_it_alone(tiny_arch, tmp_path):
  """Issue 18, point 4: after a finished run, a truncated latest backup and
  the same command again fell back to the older backup, retrained the last
  epoch and overwrote final.keras and metrics.json."""
  from autonl_tf.export.loading import ModelLoadError, load_keras_model
  config = tiny_config(tiny_arch, tmp_path / "run", epochs=2, steps_per_epoch=3)
  run = tmp_path / "run"
  train(config, log=None)
  outputs = {f: (run / f).read_bytes() for f in ("final.keras", "metrics.json", "log.csv")}
  latest = run / "backup" / "latest.weights.h5"
  latest.write_bytes(latest.read_bytes()[:1000])
  lines, started = [], EpochsStarted()
  metrics = train(config, extra_callbacks=[started], log=lines.append)
  assert lines == [f"{run} holds a finished run (final.keras, metrics.json: top-1 "
                   f"{metrics['top1']:.2f} after 2 epochs): left as it is; pass --retrain to "
                   "train again into it"]
  assert started.epochs == [] and metrics == json.loads(outputs["metrics.json"])
  assert {f: (run / f).read_bytes() for f in outputs} == outputs
  assert latest.stat().st_size == 1000  # not even the backup was touched
  # --retrain: from epoch 0 again, the old state gone, the outputs replaced.
  lines, started = [], EpochsStarted()
  metrics = train(config, extra_callbacks=[started], log=lines.append, retrain=True)
  assert lines[0] == (f"retrain: removed the previous run's metrics.json, backup, checkpoints, "
                      f"log.csv, tensorboard from {run}")
  assert started.epochs == [0, 1] and metrics["resumed_from_step"] == 0
  assert metrics["optimizer_steps"] == 6 and len(read_log(run)) == 2
  assert json.loads((run / "metrics.json").read_text()) == metrics
  # Point 7: a truncated .keras file is not "File not found"; a truncated
  # checkpoint's h5py error names the file.
  (tmp_path / "cut.keras").write_bytes((run / "final.keras").read_bytes()[:5000])
  with pytest.raises(ModelLoadError, match=f"cannot load {tmp_path / 'cut.keras'}: not a "
                     "complete .keras file"):
    load_keras_model(str(tmp_path / "cut.keras"))
  ckpt = tmp_path / "cut.weights.h5"
  ckpt.write_bytes((run / "checkpoints" / "epoch_002.weights.h5").read_bytes()[:1000])
  with pytest.raises(ModelLoadError, match=f"cannot read checkpoint {ckpt} .truncated"):
    load_keras_model(str(ckpt), tiny_arch, 8, 4)


def test_corrupt_backup_is_named_before_the_fallback(tiny_arch, tmp_path):
  import shutil
  from autonl_tf.training.backup import BackupError
  config = tiny_config(tiny_arch, tmp_path / "run", epochs=3, steps_per_epoch=3)
  with pytest.raises(KeyboardInterrupt):
    train(config, extra_callbacks=[Interrupt(after_epoch=2)], log=None)
  shutil.copytree(tmp_path / "run", tmp_path / "both")
  backup = tmp_path / "run" / "backup"
  latest = backup / "latest.weights.h5"
  latest.write_bytes(latest.read_bytes()[:1000])
  lines, started = [], EpochsStarted()
  metrics = train(config, extra_callbacks=[started], log=lines.append)
  assert lines[1].startswith(f"warning: backup {latest} cannot be read (Unable to "), lines
  assert lines[1].endswith(f"falling back to the previous epoch's backup {latest}.bkp")
  assert lines[2] == f"resumed from {backup}: epoch 1, optimizer step 3"
  assert started.epochs == [1, 2] and metrics["optimizer_steps"] == 9
  # Both unreadable: one error naming both files, nothing trained.
  config = tiny_config(tiny_arch, tmp_path / "both", epochs=3, steps_per_epoch=3)
  for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
    (tmp_path / "both" / "backup" / name).write_bytes(b"")
  with pytest.raises(BackupError, match=f"backup {tmp_path / 'both' / 'backup'}/latest"
                     r".weights.h5 cannot be read \(.*\), nor the previous one .*latest.weights.h5"
                     r".bkp \(.*\): move .* away to train from scratch"):
    train(config, log=None)


def test_nan_keeps_last_good_checkpoint(tiny_arch, tmp_path):
  from autonl_tf.training.callbacks import LossIsNaN

  class Poison(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
      if self.model.optimizer.iterations.numpy() == 7:  # inside epoch 2
        for w in self.model.trainable_weights:
          w.assign(tf.fill(w.shape, np.nan))

  config = tiny_config(tiny_arch, tmp_path / "run", epochs=3, steps_per_epoch=5, ema_momentum=0)
  with pytest.raises(LossIsNaN):
    train(config, extra_callbacks=[Poison()], log=None)
  assert os.listdir(os.path.join(config.model_dir, "checkpoints")) == ["epoch_001.weights.h5"]


def run_tool(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", args[0]), *args[1:]],
                        capture_output=True, text=True, timeout=300, env=env)


def test_train_and_eval_tools_bad_input(tmp_path):
  huge = tmp_path / "huge.txt"  # issue 18: train.py grew to 13.6 GB in 44 s building it
  huge.write_text("r1_k3_s11_e1_i32_o99999999\n")
  cases = [
      (["train.py", "--dataset=synthetic", f"--arch={huge}", f"--model_dir={tmp_path}/h"],
       "'o99999999': 99,999,999 output channels, above the limit of 16,384"),
      (["train.py", "--dataset=synthetic", "--arch=autonl-s", "--input_size=20000",
        f"--model_dir={tmp_path}/m"], "the network at 20000x20000 with 1000 classes has "
       "2,126,502,005,952 MACs, above the limit of 1,000,000,000,000"),
      (["train.py", "--dataset=no_such_ds_xyz", f"--model_dir={tmp_path}/a"], "unknown dataset"),
      (["train.py", "--dataset=cifar10", f"--data_dir={tmp_path}/missing", f"--model_dir={tmp_path}/b"],
       "does not exist"),
      (["train.py", "--dataset=synthetic", f"--arch={tmp_path}/none.txt", f"--model_dir={tmp_path}/c"],
       "nor an existing arch file"),
      (["eval.py", f"--model={tmp_path}/none.keras", "--dataset=synthetic", "--num_classes=2"],
       "does not exist"),
  ]
  for args, message in cases:
    proc = run_tool(*args)
    assert proc.returncode == 2, (args, proc.stderr[-1500:])
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-1500:]


def test_bn_recalibration_is_the_average_of_batch_statistics(tiny_arch):
  model = autonl_tf.build_model(tiny_arch, (8, 8, 3), 4)
  rng = np.random.default_rng(0)
  batches = [rng.normal(size=(6, 8, 8, 3)).astype("float32") for _ in range(3)]
  ds = tf.data.Dataset.from_tensor_slices((np.stack(batches), np.zeros((3, 6), "int32")))
  assert evaluation.recalibrate_batch_norm(model, ds, num_batches=5) == 3
  # The stem BN sees the stem conv output, which no BN influences.
  conv = model.get_layer("stem_conv")
  outs = [conv(b).numpy() for b in batches]
  bn = model.get_layer("stem_bn")
  np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([o.mean((0, 1, 2)) for o in outs], 0),
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([o.var((0, 1, 2)) for o in outs], 0),
                             rtol=1e-4, atol=1e-5)
  assert bn.momentum == 0.99


def test_rmsprop_tf_matches_tf1_update_rule():
  from autonl_tf.training.optimizers import RMSpropTF
  var = tf.Variable([1.0, -2.0, 3.0])
  opt = RMSpropTF(learning_rate=0.1, rho=0.9, momentum=0.9, epsilon=1e-3)
  grads = [np.array([0.5, -1.0, 2.0], "float32"), np.array([0.1, 0.3, -0.2], "float32")]
  # TF1 RMSPropOptimizer: ms starts at 1; ms = rho*ms + (1-rho)*g^2;
  # mom = momentum*mom + lr*g/sqrt(ms + eps); var -= mom.
  ms, mom, want = np.ones(3), np.zeros(3), var.numpy().astype(np.float64)
  for g in grads:
    opt.apply([tf.constant(g)], [var])
    ms = 0.9 * ms + 0.1 * g.astype(np.float64) ** 2
    mom = 0.9 * mom + 0.1 * g / np.sqrt(ms + 1e-3)
    want = want - mom
  np.testing.assert_allclose(var.numpy(), want, rtol=1e-5)


def test_fit_loop_steps_per_epoch_are_the_full_batches_of_the_train_split():
  """Training and the search take their steps per epoch from one function:
  floor(examples / batch) when unset, the setting when set, and a named error
  for an unknown or too small split."""
  from autonl_tf.data import DatasetInfo
  from autonl_tf.training import fit_loop

  def info(train):
    return DatasetInfo("cifar10", 10, [str(i) for i in range(10)],
                       {"train": train, "test": 10000}, (32, 32, 3))

  assert fit_loop.steps_per_epoch(info(50000), None, 128) == 390  # 50000 // 128
  assert fit_loop.steps_per_epoch(info(50000), 7, 128) == 7
  assert fit_loop.steps_per_epoch(info(None), 3, 128) == 3
  with pytest.raises(ValueError, match="cifar10's train split is unknown: set steps_per_epoch"):
    fit_loop.steps_per_epoch(info(None), None, 128)
  with pytest.raises(ValueError, match="the train split has 100 examples, fewer than one batch "
                                       "of 128"):
    fit_loop.steps_per_epoch(info(100), None, 128)
