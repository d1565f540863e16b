"""autonl_tf.compat: the Keras workaround for MultiWorkerMirroredStrategy is
applied by one explicit call, once, and nothing else needs it. (The patched
multi-worker path itself runs in test_distribute's two-worker tests, through
tools/train.py.)"""

import keras
import numpy as np
import pytest
from keras.src.backend.tensorflow import trainer as tf_trainer

from autonl_tf import compat
from autonl_tf.data import DataConfig
from autonl_tf.training.trainer import TrainConfig, build_and_compile, train


@pytest.fixture
def unpatched():
  """Keras as shipped for the test; the state before it afterwards."""
  was = compat.applied()
  compat.revert()
  yield
  compat.revert()
  if was:
    compat.apply()


def keras_functions():
  return tf_trainer.TensorFlowTrainer._maybe_symbolic_build, tf_trainer.reduce_per_replica


def test_applied_twice_is_a_no_op(unpatched):
  shipped = keras_functions()
  assert compat.apply() and compat.applied()
  patched = keras_functions()
  assert all(p is not s for p, s in zip(patched, shipped))
  assert compat.apply()
  assert keras_functions() == patched  # not wrapped a second time
  compat.revert()
  assert keras_functions() == shipped and not compat.applied()
  compat.revert()
  assert keras_functions() == shipped


def test_other_keras_versions_are_left_alone(unpatched, monkeypatch):
  monkeypatch.setattr(keras, "version", lambda: "4.1.0")
  with pytest.warns(UserWarning, match=r"Keras 4\.1 is outside the versions .* not applied"):
    assert not compat.apply()
  assert not compat.applied()


def test_without_the_patches_the_other_strategies_train(unpatched, tiny_arch, tmp_path,
                                                        mirrored):
  """train() does not patch Keras, and needs no patch on one device; a
  MirroredStrategy step is the same unpatched and patched (the patches hand
  every other strategy to Keras' own code)."""
  data = DataConfig("synthetic", input_size=8, num_classes=4, seed=0)
  config = TrainConfig(arch=tiny_arch, data=data, model_dir=str(tmp_path / "run"), batch_size=16,
                       epochs=1, steps_per_epoch=2, lr_warmup_epochs=0, validation_split=None,
                       eval_steps=1, bn_recalibration_batches=0, verbose=0)
  metrics = train(config, log=None)
  assert metrics["optimizer_steps"] == 2 and not compat.applied()

  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(16, 8, 8, 3)).astype("float32"), rng.integers(0, 4, 16)
  losses = []
  for patch in (False, True):
    if patch:
      compat.apply()
    keras.utils.set_random_seed(3)
    with mirrored.scope():
      model = build_and_compile(config, 4, 2)
    losses.append(model.fit(x, y, batch_size=8, epochs=1, shuffle=False,
                            verbose=0).history["loss"])
  np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
