"""tf.distribute strategies and mixed precision for the training and search
loops.

Strategies by name (`make_strategy`):

* `default`: TensorFlow's default (no distribution);
* `one_device`: the first GPU, else the CPU;
* `mirrored`: all local GPUs (or the first `num_gpus`); on a machine without
  GPUs, the logical CPU devices (`cpu_devices=N` splits the CPU into N, which
  is how the multi-replica code is exercised on a laptop);
* `multi_worker`: `MultiWorkerMirroredStrategy`, cluster from `TF_CONFIG`;
* `tpu`: `TPUStrategy` on the TPU named by `tpu` ("" or "local" on a TPU VM).

`multi_worker` training needs the Keras workaround of `autonl_tf.compat`
(`compat.apply()`, once, before `fit`). The chief-only backups that let a
restarted worker rejoin are in `autonl_tf.training.backup`.
"""

import contextlib
import json
import os
from typing import Optional

import keras
import tensorflow as tf

from autonl_tf import constants

STRATEGIES = constants.STRATEGIES
PRECISIONS = constants.PRECISIONS


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
  if single_machine(strategy):
    return True
  resolver = strategy.cluster_resolver
  return resolver.task_type in ("chief", None) or (
      resolver.task_type == "worker" and resolver.task_id == 0 and
      "chief" not in resolver.cluster_spec().as_dict())


def single_machine(strategy) -> bool:
  """True unless the strategy spans a cluster (several workers, a TPU
  host): what one machine measures holds for the whole run."""
  resolver = getattr(strategy, "cluster_resolver", None)
  return resolver is None or not resolver.cluster_spec().as_dict()
