"""tf.distribute strategies, mixed precision and fault tolerance for the
training and search loops.

Strategies by name (`make_strategy`):

* `default`: TensorFlow's default (no distribution);
* `one_device`: the first GPU, else the CPU;
* `mirrored`: all local GPUs (or the first `num_gpus`); on a machine without
  GPUs, the logical CPU devices (`cpu_devices=N` splits the CPU into N, which
  is how the multi-replica code is exercised on a laptop);
* `multi_worker`: `MultiWorkerMirroredStrategy`, cluster from `TF_CONFIG`;
* `tpu`: `TPUStrategy` on the TPU named by `tpu` ("" or "local" on a TPU VM).

Fault tolerance: `ChiefBackupAndRestore` is Keras' `BackupAndRestore` made
safe for several workers (only the chief writes, atomically; every worker
restores from the chief's files), so a killed worker that is restarted
rejoins at the last completed epoch.
"""

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from typing import Optional

import keras
import tensorflow as tf

from autonl_tf import io

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


class DistributeError(ValueError):
  pass


def split_cpu(n: int):
  """Makes `n` logical CPU devices (must run before TensorFlow initialises
  its devices, i.e. before the first op)."""
  cpus = tf.config.list_physical_devices("CPU")
  current = tf.config.get_logical_device_configuration(cpus[0])
  if current and len(current) == n:
    return
  try:
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)
  except RuntimeError:
    raise DistributeError(f"cannot split the CPU into {n} devices: TensorFlow is already "
                          "initialised (choose the strategy before running any op)") from None


def _tf_config():
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    raise DistributeError("strategy multi_worker needs TF_CONFIG (cluster and task of this "
                          "process), e.g. {\"cluster\": {\"worker\": [\"host1:port\", "
                          "\"host2:port\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}")
  try:
    config = json.loads(raw)
  except ValueError as e:
    raise DistributeError(f"TF_CONFIG is not valid JSON: {e}") from None
  cluster, task = config.get("cluster"), config.get("task")
  if not isinstance(cluster, dict) or not cluster:
    raise DistributeError("TF_CONFIG has no 'cluster'")
  if not isinstance(task, dict) or task.get("type") not in cluster:
    raise DistributeError(f"TF_CONFIG task {task} is not one of the cluster's jobs "
                          f"({', '.join(cluster)})")
  if not 0 <= int(task.get("index", 0)) < len(cluster[task["type"]]):
    raise DistributeError(f"TF_CONFIG task index {task.get('index')} is outside the "
                          f"{len(cluster[task['type']])} '{task['type']}' tasks")
  return config


def make_strategy(name: str = "default", tpu: Optional[str] = None,
                  num_gpus: Optional[int] = None, cpu_devices: Optional[int] = None,
                  collective_timeout_s: Optional[float] = None) -> tf.distribute.Strategy:
  """The strategy called `name` (see the module docstring)."""
  if name not in STRATEGIES:
    raise DistributeError(f"unknown strategy '{name}': expected one of {', '.join(STRATEGIES)}")
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "multi_worker":  # before anything initialises the TF runtime
    _tf_config()
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO,
        timeout_seconds=collective_timeout_s)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
  if name == "tpu":
    return _tpu_strategy(tpu)
  if cpu_devices:
    split_cpu(cpu_devices)
  gpus = tf.config.list_physical_devices("GPU")
  if num_gpus is not None:
    if num_gpus > len(gpus):
      raise DistributeError(f"num_gpus={num_gpus} but this machine has {len(gpus)} GPUs")
    gpus = gpus[:num_gpus]
  gpu_names = [f"/gpu:{i}" for i in range(len(gpus))]
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy(gpu_names[0] if gpus else "/cpu:0")
  # mirrored
  devices = gpu_names or [d.name for d in tf.config.list_logical_devices("CPU")]
  return tf.distribute.MirroredStrategy(devices)


def _tpu_strategy(tpu):
  # TPU: a name/address, "" or "local" for the TPU VM this runs on.
  target = "local" if tpu in (None, "", "local") else tpu
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=target)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, tf.errors.OpError, RuntimeError) as e:
    raise DistributeError(f"no TPU '{target}' reachable: {str(e).splitlines()[0]}") from None
  return tf.distribute.TPUStrategy(resolver)


@contextlib.contextmanager
def precision(policy: str = "float32"):
  """Sets Keras' global dtype policy for the models built inside; restores
  the previous one on exit. `mixed_bfloat16` (TPU, recent CPUs) and
  `mixed_float16` (GPUs; Keras adds dynamic loss scaling) compute in 16 bits
  with float32 variables."""
  if policy not in PRECISIONS:
    raise DistributeError(f"unknown precision '{policy}': expected one of {', '.join(PRECISIONS)}")
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(policy)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def is_chief(strategy) -> bool:
  """True on the one worker that writes checkpoints, summaries and exports:
  the `chief` task if the cluster has one, else worker 0."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return True
  return resolver.task_type in ("chief", None) or (
      resolver.task_type == "worker" and resolver.task_id == 0 and
      "chief" not in resolver.cluster_spec().as_dict())


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
  either, `DistributeError` names both files.
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
      raise DistributeError(f"backup {latest} cannot be read ({error}) and there is no older "
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
        raise DistributeError(f"backup {latest} cannot be read ({error}), nor the previous one "
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


def patch_multi_worker_fit(model: keras.Model):
  """Works around keras-team/keras#20585 (Keras 3 `fit` under
  `MultiWorkerMirroredStrategy`): before tracing, Keras builds the model's
  metrics and optimizer from one batch that it first `strategy.reduce`s,
  which MultiWorkerMirroredStrategy cannot do eagerly on a batch of
  per-replica values. The batch is only needed for its shapes, so this uses
  the local replica's part instead. A no-op for other strategies."""
  strategy = model.distribute_strategy
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return model
  original = model._maybe_symbolic_build

  def local_value(v):
    if isinstance(v, tf.distribute.DistributedValues):
      return strategy.experimental_local_results(v)[0]
    return v

  def build(iterator=None, data_batch=None):
    if iterator is None:
      return original(iterator=iterator, data_batch=data_batch)
    for _, _, it in iterator:
      data_batch = tf.nest.map_structure(local_value, next(it))
      break
    with strategy.scope():
      model._symbolic_build(data_batch=data_batch)

  model._maybe_symbolic_build = build
  _patch_multi_worker_log_reduction()
  return model


def _patch_multi_worker_log_reduction():
  """Second half of the workaround: Keras averages the per-replica logs of
  each step with `strategy.reduce("MEAN", v, axis=0)` under
  MultiWorkerMirroredStrategy, which fails for scalar logs (loss, metric
  results). Scalars are averaged over all replicas with `axis=None`."""
  from keras.src.backend.tensorflow import trainer as tf_trainer
  if getattr(tf_trainer.reduce_per_replica, "_autonl_patched", False):
    return
  original = tf_trainer.reduce_per_replica

  def reduce_per_replica(values, strategy, reduction):
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or \
        reduction not in ("auto", "mean"):
      return original(values, strategy, reduction)

    def mean(v):
      if not isinstance(v, tf.distribute.DistributedValues):
        return v
      rank = strategy.experimental_local_results(v)[0].shape.rank
      return strategy.reduce("MEAN", v, axis=None if rank == 0 else 0)

    return tf.nest.map_structure(mean, values)

  reduce_per_replica._autonl_patched = True
  tf_trainer.reduce_per_replica = reduce_per_replica
