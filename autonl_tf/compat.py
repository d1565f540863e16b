"""Workarounds for Keras bugs, in one place, applied by one explicit call.

`apply()` works around keras-team/keras#20585: Keras 3's `fit` fails under
`tf.distribute.MultiWorkerMirroredStrategy`, twice.

1. Before tracing, `fit` builds the model's metrics and optimizer from one
   batch that it first `strategy.reduce`s, which MultiWorkerMirroredStrategy
   cannot do eagerly on a batch of per-replica values. The batch is only
   needed for its shapes: the patch uses the local replica's part.
2. Each step's logs are averaged with `strategy.reduce("MEAN", v, axis=0)`,
   which fails for scalar logs (loss, metric results): the patch averages
   scalars over all replicas with `axis=None`.

Both patches act only under MultiWorkerMirroredStrategy and hand every other
strategy to Keras' own code. `tools/train.py`, `tools/search.py` and
`tools/run_pipeline.py` call `apply()` when `--strategy=multi_worker`;
library users who train under MultiWorkerMirroredStrategy call it once
before `fit` (`train()` and `search()` do not patch Keras). Calling it
again is a no-op; `revert()` puts Keras' functions back.

The patches replace private Keras functions, so they are applied only to the
Keras versions they were written and tested against (`KERAS_VERSIONS`); on
another version `apply()` warns and changes nothing (check whether that
version still has the bug, then widen the range).
"""

import warnings

#: Keras versions [first, last) the patches are for (tested with 3.12 - 3.15).
KERAS_VERSIONS = ((3, 0), (4, 0))

_ORIGINALS = {}  # name -> the Keras function a patch replaced


def _keras_version():
  import keras
  return tuple(int(p) for p in keras.version().split(".")[:2])


def applied() -> bool:
  """True while the patches are in place."""
  return bool(_ORIGINALS)


def apply() -> bool:
  """Patches Keras for MultiWorkerMirroredStrategy (see the module docstring).

  Returns:
    True if the patches are in place (applied now or by an earlier call),
    False if this Keras version is not one they are for.
  """
  if applied():
    return True
  first, last = KERAS_VERSIONS
  version = _keras_version()
  if not first <= version < last:
    warnings.warn(f"autonl_tf.compat: Keras {'.'.join(map(str, version))} is outside the "
                  f"versions the MultiWorkerMirroredStrategy workaround is for "
                  f"({'.'.join(map(str, first))} to {'.'.join(map(str, last))}); not applied",
                  stacklevel=2)
    return False
  from keras.src.backend.tensorflow import trainer as tf_trainer
  build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build
  reduce = tf_trainer.reduce_per_replica
  tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _build_from_local_batch(build)
  tf_trainer.reduce_per_replica = _mean_of_scalars(reduce)
  _ORIGINALS.update(maybe_symbolic_build=build, reduce_per_replica=reduce)
  return True


def revert():
  """Puts Keras' own functions back (a no-op when nothing is applied)."""
  if not applied():
    return
  from keras.src.backend.tensorflow import trainer as tf_trainer
  tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _ORIGINALS.pop("maybe_symbolic_build")
  tf_trainer.reduce_per_replica = _ORIGINALS.pop("reduce_per_replica")


def _is_multi_worker(strategy) -> bool:
  import tensorflow as tf
  return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _build_from_local_batch(original):
  """Patch 1: `_maybe_symbolic_build` from the local replica's batch."""
  import tensorflow as tf

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    strategy = self._distribute_strategy
    if iterator is None or not _is_multi_worker(strategy):
      return original(self, iterator=iterator, data_batch=data_batch)

    def local_value(v):
      if isinstance(v, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(v)[0]
      return v

    for _, _, it in iterator:
      data_batch = tf.nest.map_structure(local_value, next(it))
      break
    with strategy.scope():
      self._symbolic_build(data_batch=data_batch)

  return _maybe_symbolic_build


def _mean_of_scalars(original):
  """Patch 2: `reduce_per_replica` that averages scalar logs with `axis=None`."""

  def reduce_per_replica(values, strategy, reduction):
    if not _is_multi_worker(strategy) or reduction not in ("auto", "mean"):
      return original(values, strategy, reduction)
    import tensorflow as tf

    def mean(v):
      if not isinstance(v, tf.distribute.DistributedValues):
        return v
      rank = strategy.experimental_local_results(v)[0].shape.rank
      return strategy.reduce("MEAN", v, axis=None if rank == 0 else 0)

    return tf.nest.map_structure(mean, values)

  return reduce_per_replica
