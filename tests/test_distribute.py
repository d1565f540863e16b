"""Strategies, mixed precision + XLA, and multi-worker training with a
worker killed and restarted.

The MirroredStrategy tests use the two logical CPU devices made in
conftest.py; the multi-worker tests start two `tools/train.py` processes on
localhost with their own TF_CONFIG (TensorFlow's MultiWorkerMirroredStrategy
over gRPC)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from autonl_tf import distribute
from autonl_tf.data import DataConfig
from autonl_tf.search.runner import SearchConfig, build_supernet
from autonl_tf.search.space import SPACES, SearchSpace, Stage
from autonl_tf.training.trainer import TrainConfig, build_and_compile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE, CLASSES = 8, 4


@pytest.fixture
def arch_file(tiny_arch):
  return tiny_arch


def train_config(arch_file, tmp_path, **kw):
  base = dict(arch=arch_file, data=DataConfig("synthetic", input_size=SIZE, num_classes=CLASSES),
              model_dir=str(tmp_path / "run"), batch_size=16, epochs=1, lr_warmup_epochs=0,
              dropout_rate=0.0, drop_connect_rate=0.0, ema_momentum=0.0, lr_per_256=0.5)
  base.update(kw)
  return TrainConfig(**base)


def batch(n=16, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, SIZE, SIZE, 3)).astype(np.float32), rng.integers(0, CLASSES, n)


def test_strategy_factory():
  assert distribute.make_strategy("default") is tf.distribute.get_strategy()
  mirrored = distribute.make_strategy("mirrored")
  assert mirrored.num_replicas_in_sync == 2  # the two logical CPUs of conftest
  assert isinstance(distribute.make_strategy("one_device"), tf.distribute.OneDeviceStrategy)
  with pytest.raises(distribute.DistributeError, match="unknown strategy 'horovod'"):
    distribute.make_strategy("horovod")
  with pytest.raises(distribute.DistributeError, match="num_gpus=2 but this machine has 0 GPUs"):
    distribute.make_strategy("mirrored", num_gpus=2)
  old = os.environ.pop("TF_CONFIG", None)
  try:
    with pytest.raises(distribute.DistributeError, match="needs TF_CONFIG"):
      distribute.make_strategy("multi_worker")
    os.environ["TF_CONFIG"] = '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}'
    with pytest.raises(distribute.DistributeError, match="index 3 is outside the 1 'worker'"):
      distribute.make_strategy("multi_worker")
  finally:
    os.environ.pop("TF_CONFIG", None)
    if old is not None:
      os.environ["TF_CONFIG"] = old
  with pytest.raises(distribute.DistributeError, match="unknown precision 'fp8'"):
    with distribute.precision("fp8"):
      pass


def test_mirrored_training_step_equals_default(arch_file, tmp_path, mirrored):
  """One step of the recipe (label smoothing, weight decay, RMSProp, sync
  BN) on a global batch of 16: two replicas of 8 == one device of 16."""
  x, y = batch()
  config = train_config(arch_file, tmp_path, sync_bn=True)
  single = build_and_compile(config, CLASSES, 10)
  with mirrored.scope():
    multi = build_and_compile(config, CLASSES, 10)
  multi.set_weights(single.get_weights())
  start = [w.copy() for w in single.get_weights()]
  single.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
  multi.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
  assert multi.distribute_strategy.num_replicas_in_sync == 2
  moved = 0
  for a, b, s in zip(single.get_weights(), multi.get_weights(), start):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    moved += int(not np.allclose(a, s))
  assert moved > 10
  # Without sync BN the per-replica statistics differ, and so do the weights:
  # the comparison above can fail.
  with mirrored.scope():
    local = build_and_compile(train_config(arch_file, tmp_path, sync_bn=False), CLASSES, 10)
  local.set_weights(start)
  local.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
  assert max(np.abs(a - b).max() for a, b in zip(single.get_weights(), local.get_weights())) > 1e-4


def test_bfloat16_xla_training_step(arch_file, tmp_path):
  x, y = batch()
  losses = {}
  for precision in ("float32", "mixed_bfloat16"):
    keras.utils.set_random_seed(5)
    bf16 = precision == "mixed_bfloat16"  # XLA for bf16; the float32 reference without
    model = build_and_compile(train_config(arch_file, tmp_path, precision=precision,
                                           jit_compile=bf16), CLASSES, 10)
    losses[precision] = model.fit(x, y, batch_size=16, epochs=2, shuffle=False,
                                  verbose=0).history["loss"]
    if precision == "mixed_bfloat16":
      assert model.get_layer("block_1").compute_dtype == "bfloat16"
      assert model.get_layer("logits").compute_dtype == "float32"
      assert all(v.dtype == "float32" for v in model.trainable_variables)
  assert keras.config.dtype_policy().name == "float32"  # restored
  # Same initial weights: bf16 arithmetic changes the loss by well under 5%.
  np.testing.assert_allclose(losses["mixed_bfloat16"], losses["float32"], rtol=0.05)


def test_bfloat16_xla_search_step(tmp_path):
  SPACES["test-dist"] = SearchSpace(name="test-dist", stages=(Stage(16, 2, 1), Stage(24, 1, 2)),
                                    stem_filters=8, stem_stride=1, first_block="", head_filters=16)
  try:
    x, y = batch()
    result = {}
    for precision in ("float32", "mixed_bfloat16"):
      keras.utils.set_random_seed(5)
      config = SearchConfig(space="test-dist", data=DataConfig("synthetic", input_size=SIZE,
                                                               num_classes=CLASSES),
                            model_dir=str(tmp_path), batch_size=16, cost="target",
                            target_macs=2e5, supernet_warmup_epochs=0, jit_compile=precision != "float32",
                            precision=precision)
      net = build_supernet(config, CLASSES, 10)
      net.search_phase.assign(1.0)
      macs0 = float(net.macs())
      arch0 = [v.numpy().copy() for v in net.arch_variables]
      logs = net.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
      moved = sum(not np.allclose(a, v.numpy()) for a, v in zip(arch0, net.arch_variables))
      result[precision] = (macs0, logs["ce"][0], moved)
      if precision == "mixed_bfloat16":
        assert net.blocks[0].compute_dtype == "bfloat16"
        assert all(v.dtype == "float32" for v in net.arch_variables)
    (m32, ce32, moved32), (m16, ce16, moved16) = result["float32"], result["mixed_bfloat16"]
    assert m16 == m32  # gates and MACs stay float32: the exact count
    assert abs(ce16 - ce32) / ce32 < 0.05
    assert moved16 == moved32 and moved16 > 5
  finally:
    del SPACES["test-dist"]


# ------------------------------------------------------------ multi-worker --

def free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


class Cluster:
  """Two `tools/train.py` workers; every process is killed on exit."""

  def __init__(self, tmp_path, args):
    self.tmp_path, self.args, self.procs, self.launches = tmp_path, args, [], 0

  def start(self):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    self.launches += 1
    self.procs = []
    for i in range(2):
      env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                 TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
      out = open(self.tmp_path / f"worker{i}_run{self.launches}.log", "w")
      self.procs.append(subprocess.Popen(
          [sys.executable, os.path.join(ROOT, "tools", "train.py"), *self.args],
          stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))

  def wait(self, timeout):
    deadline = time.time() + timeout
    for p in self.procs:
      p.wait(max(1, deadline - time.time()))
    return [p.returncode for p in self.procs]

  def log(self, i, launch=None):
    return (self.tmp_path / f"worker{i}_run{launch or self.launches}.log").read_text()

  def kill(self, i):
    if self.procs[i].poll() is None:
      os.killpg(self.procs[i].pid, signal.SIGKILL)
      self.procs[i].wait(30)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    for i in range(len(self.procs)):
      self.kill(i)


def worker_args(arch_file, model_dir, epochs, steps):
  return [f"--arch={arch_file}", "--strategy=multi_worker", "--dataset=synthetic",
          f"--input_size={SIZE}", f"--num_classes={CLASSES}", "--batch_size=16",
          f"--epochs={epochs}", f"--steps_per_epoch={steps}", f"--model_dir={model_dir}",
          "--validation_split=none", "--bn_recalibration_batches=2", "--eval_steps=2",
          "--warmup_epochs=0", "--seed=1", "--verbose=0"]


def epoch_lines(log):
  return [l for l in log.splitlines() if l.startswith("epoch ")]


def test_killed_worker_rejoins_and_the_run_resumes_in_sync(arch_file, tmp_path):
  epochs, steps = 8, 25
  model_dir = tmp_path / "run"
  meta = model_dir / "backup" / "training_metadata.json"
  with Cluster(tmp_path, worker_args(arch_file, model_dir, epochs, steps)) as cluster:
    cluster.start()
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for the second epoch's backup
      if meta.exists() and json.loads(meta.read_text())["epoch"] >= 2:
        break
      assert all(p.poll() is None for p in cluster.procs), cluster.log(0)[-3000:]
      time.sleep(0.05)
    cluster.kill(1)  # SIGKILL the non-chief worker mid-run
    try:  # the chief cannot go on without it: it fails or blocks
      cluster.procs[0].wait(15)
    except subprocess.TimeoutExpired:
      pass
    cluster.kill(0)
    saved = json.loads(meta.read_text())
    print(f"killed worker 1 after the backup of epoch {saved['epoch']} (step {saved['step']})")
    assert 2 <= saved["epoch"] < epochs and saved["step"] == saved["epoch"] * steps
    cluster.start()  # both restarted
    codes = cluster.wait(300)
    assert codes == [0, 0], cluster.log(0)[-3000:] + cluster.log(1)[-3000:]
  resumed = f"epoch {saved['epoch']}, optimizer step {saved['step']}"
  assert resumed in cluster.log(0) and resumed in cluster.log(1)
  metrics = json.loads((model_dir / "metrics.json").read_text())
  assert metrics["resumed_from_step"] == saved["step"]
  assert metrics["optimizer_steps"] == epochs * steps
  assert metrics["epochs_run_this_session"] == epochs - saved["epoch"]
  # The second run logged exactly the epochs after the backup.
  numbers = [int(l.split(":")[0].split()[1]) for l in epoch_lines(cluster.log(0))]
  assert numbers == list(range(saved["epoch"] + 1, epochs + 1))
  # Synchronous data parallelism: both workers saw the same global losses, to the end.
  assert metrics["replicas"] == 2
  lines = [[l.split(" (")[0] for l in epoch_lines(cluster.log(i))] for i in range(2)]
  assert lines[0] == lines[1]
  assert "final: " in cluster.log(0) and f"steps={epochs * steps}" in cluster.log(1)
  print(f"restarted: resumed at {resumed}; finished with {metrics['optimizer_steps']} steps")
