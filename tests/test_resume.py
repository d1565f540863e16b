"""A run killed in the middle of an epoch and resumed ends bit for bit where
the uninterrupted run ends (fixed seed, deterministic input): the resumed input
stream goes on after the batches already consumed, and the backup holds the
random state of the layers (warm-up gate dropout, dropout, drop-connect)
besides the weights and both optimizers' state."""

import json
import os

import keras
import numpy as np
import pytest

from autonl_tf import io
from autonl_tf.data import DataConfig, distributed_dataset, make_dataset
from autonl_tf.training import backup as backup_lib
from test_data import make_folder

STEPS = 4


class Killed(Exception):
  """Stands for a kill: raised in the middle of epoch 2, after the backup of
  epoch 1 was written (no callback runs after it, as after a SIGKILL)."""


class KillInEpoch(keras.callbacks.Callback):

  def __init__(self, epoch=1, batch=1):
    super().__init__()
    self.at = (epoch, batch)
    self.epoch = None

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    if (self.epoch, batch) == self.at:
      raise Killed()


class FinalState(keras.callbacks.Callback):
  """Everything a resumed run must reproduce: weights (architecture variables
  included), the random layers' seed states, and the state of every optimizer
  (step counters included)."""

  def on_train_end(self, logs=None):
    model, state = self.model, {}
    weights = {id(w) for w in model.weights}
    for i, v in enumerate(model.weights):
      state[f"weight {i} {v.name}"] = v.numpy()
    for i, v in enumerate(v for v in model.variables if id(v) not in weights):
      state[f"seed state {i}"] = v.numpy()
    for name in ("optimizer", "arch_optimizer"):
      for i, v in enumerate(getattr(getattr(model, name, None), "variables", [])):
        state[f"{name} {i}"] = v.numpy()  # (its names hold the model's, made unique)
    self.state = state


def assert_same_state(resumed, uninterrupted):
  assert resumed.keys() == uninterrupted.keys()
  differ = [k for k in uninterrupted if not np.array_equal(resumed[k], uninterrupted[k])]
  assert not differ, f"{len(differ)} of {len(uninterrupted)} differ: {differ[:8]}"


def run_killed_and_resumed(run, tmp_path, kill_epoch=1):
  """(uninterrupted final state, resumed final state, their model dirs)."""
  uninterrupted, resumed = FinalState(), FinalState()
  run(str(tmp_path / "a"), [uninterrupted])
  with pytest.raises(Killed):
    run(str(tmp_path / "b"), [KillInEpoch(kill_epoch, 1)])
  assert not os.path.exists(tmp_path / "b" / "arch.txt")  # no output from a killed run
  # the backup of the epoch before, as a kill leaves it
  meta = io.read_json(tmp_path / "b" / "backup" / "training_metadata.json")
  assert meta["step"] == kill_epoch * STEPS
  run(str(tmp_path / "b"), [resumed])
  return uninterrupted.state, resumed.state, str(tmp_path / "a"), str(tmp_path / "b")


# ------------------------------------------------------------------ search --

def test_killed_search_resumes_as_uninterrupted(tmp_path):
  """The resumed epoch 2 is a warm-up epoch, with gate dropout drawn from
  the blocks' seed generators (a kill in the search proper: the next test)."""
  warmup_epochs = 2
  from autonl_tf.search.runner import SearchConfig, search

  def run(model_dir, callbacks):
    keras.utils.set_random_seed(1)  # as tools/search.py --seed=1
    config = SearchConfig(
        space="tiny", data=DataConfig("synthetic", input_size=16, num_classes=5, seed=1,
                                      deterministic=True),
        model_dir=model_dir, epochs=3, supernet_warmup_epochs=warmup_epochs, steps_per_epoch=STEPS,
        batch_size=8, gate_dropout=0.5, verbose=0)
    return search(config, extra_callbacks=callbacks, log=None)

  a, b, dir_a, dir_b = run_killed_and_resumed(run, tmp_path)
  assert sum(k.startswith("weight") and k.split()[2].startswith("arch_") for k in a) == 30
  assert any(k.startswith("arch_optimizer") for k in a) and any(k.startswith("seed") for k in a)
  assert_same_state(b, a)
  with open(os.path.join(dir_a, "arch.txt")) as fa, open(os.path.join(dir_b, "arch.txt")) as fb:
    assert fa.read() == fb.read()
  for name in ("search_log.csv", "margins.csv"):  # the resumed run's rows follow on, once each
    with open(os.path.join(dir_a, name)) as fa, open(os.path.join(dir_b, name)) as fb:
      assert fa.read() == fb.read()


def test_killed_target_search_lands_as_uninterrupted(tmp_path, monkeypatch):
  """Target mode derives from the states visited since the second search
  epoch (`LandingLog`): what it saw before the kill comes back with the
  backup."""
  from autonl_tf.search import callbacks as search_cb
  from autonl_tf.search import runner
  landings = []

  class Recording(search_cb.LandingLog):
    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      self.seen = {}
      landings.append(self)

    def on_train_begin(self, logs=None):  # after the backup's restore
      self.seen["begin"] = self.get_state()
      super().on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
      self.seen[epoch + 1] = self.get_state()

  monkeypatch.setattr(search_cb, "LandingLog", Recording)

  def run(model_dir, callbacks):
    keras.utils.set_random_seed(1)
    config = runner.SearchConfig(
        space="tiny", data=DataConfig("synthetic", input_size=16, num_classes=5, seed=1,
                                      deterministic=True),
        model_dir=model_dir, epochs=3, supernet_warmup_epochs=0, steps_per_epoch=STEPS, batch_size=8,
        cost="target", target_macs=2e6, tolerance=0.6, verbose=0)
    return runner.search(config, extra_callbacks=callbacks, log=None)

  a, b, dir_a, dir_b = run_killed_and_resumed(run, tmp_path, kill_epoch=2)
  uninterrupted, resumed = landings[0], landings[-1]
  assert uninterrupted.seen[2]["visits"]  # the landing had begun before the kill
  assert resumed.seen["begin"] == uninterrupted.seen[2]
  assert resumed.get_state() == uninterrupted.get_state()
  assert_same_state(b, a)
  for name in ("arch.txt", "decisions.json"):
    with open(os.path.join(dir_a, name)) as fa, open(os.path.join(dir_b, name)) as fb:
      want, got = fa.read(), fb.read()
    if name == "decisions.json":  # the wall time differs
      want, got = (json.loads(t) for t in (want, got))
      want.pop("search_time_s"), got.pop("search_time_s")
    assert got == want


def test_a_search_resumed_with_other_settings_is_refused(tmp_path):
  """A backup resumed under another cost model (or budget, schedule, ...)
  would go on with a lambda in the other unit: refused, naming the change,
  before anything is written; settings the saved file predates count at
  their defaults."""
  import dataclasses
  from autonl_tf.search.runner import SearchConfig, search
  data = DataConfig("synthetic", input_size=16, num_classes=5, seed=1, data_dir="/a")
  saved = SearchConfig(space="tiny", data=data, model_dir=str(tmp_path), epochs=3,
                       steps_per_epoch=STEPS, batch_size=8, cost="target", target_macs=2e6)
  old = dataclasses.asdict(saved)
  del old["landing_latency"], old["landing_window"], old["nl_norm"]  # a file from before these
  io.write_json(tmp_path / "search_config.json", old)
  os.makedirs(tmp_path / "backup")
  io.write_json(tmp_path / "backup" / "training_metadata.json", {"step": STEPS})
  with pytest.raises(ValueError, match=r"holds a search with other settings \(epochs: 3 -> 4, "
                                       r"target_macs: 2000000.0 -> 3000000.0\): resume it"):
    search(dataclasses.replace(saved, epochs=4, target_macs=3e6, verbose=0), log=None)
  with pytest.raises(ValueError, match=r"\(data.seed: 1 -> 2\)"):
    search(dataclasses.replace(saved, data=dataclasses.replace(data, seed=2)), log=None)
  with pytest.raises(ValueError, match=r"\(tolerance: 0.03 -> 0.05\)"):
    search(dataclasses.replace(saved, tolerance=0.05), log=None)
  # The space's own activation / LightNL product given explicitly (tools/search.py passes its
  # flags' defaults) is no change; another one is.
  with pytest.raises(ValueError, match=r"\(nl_norm: 'none' -> 'second_moment'\)"):
    search(dataclasses.replace(saved, activation="swish", nl_norm="second_moment"), log=None)
  assert io.read_json(tmp_path / "search_config.json") == old  # not overwritten
  # A file that saved None (the space's own, before the resolved value was recorded) meant
  # the paper's product in every space then: the cifar space's own is second_moment now.
  io.write_json(tmp_path / "search_config.json",
                dict(dataclasses.asdict(dataclasses.replace(saved, space="cifar")),
                     activation=None, nl_norm=None))
  with pytest.raises(ValueError, match=r"\(nl_norm: 'none' -> 'second_moment'\)"):
    search(dataclasses.replace(saved, space="cifar"), log=None)
  # ... and resumes with the paper's product asked for explicitly.
  from autonl_tf.search.runner import _check_resumed_config
  _check_resumed_config(io.read_json(tmp_path / "search_config.json"),
                        dataclasses.replace(saved, space="cifar", nl_norm="none"))


# ---------------------------------------------------------------- training --

ARCH = ("#! stem_stride=1 head_filters=32\nr2_k3_s11_e1_i8_o8\n"
        "r1_k3_s22_e3_i8_o16_se0.25_nonlocal0.5\n")


def test_killed_training_resumes_as_uninterrupted(tmp_path):
  """tools/train.py's training, with dropout, drop-connect and weight EMA."""
  from autonl_tf.training import TrainConfig, train
  arch = tmp_path / "arch.txt"
  arch.write_text(ARCH)

  def run(model_dir, callbacks):
    keras.utils.set_random_seed(1)
    config = TrainConfig(
        arch=str(arch), data=DataConfig("synthetic", input_size=16, num_classes=5, seed=1,
                                        deterministic=True),
        model_dir=model_dir, batch_size=8, epochs=3, steps_per_epoch=STEPS, lr_warmup_epochs=1,
        lr_schedule="cosine", dropout_rate=0.3, drop_connect_rate=0.5, ema_momentum=0.9,
        validation_split=None, eval_steps=1, bn_recalibration_batches=0, verbose=0)
    return train(config, extra_callbacks=callbacks, log=None)

  a, b, _, _ = run_killed_and_resumed(run, tmp_path)
  assert sum(k.startswith("seed") for k in a) == 2  # the classifier's dropout, one drop-connect
  assert_same_state(b, a)


# -------------------------------------------------------------------- data --

def _batches(ds, n):
  return [(x.numpy(), y.numpy()) for x, y in ds.take(n)]


def _assert_same_batches(got, want):
  assert len(got) == len(want)
  for (x, y), (wx, wy) in zip(got, want):
    np.testing.assert_array_equal(y, wy)
    np.testing.assert_array_equal(x, wx)


@pytest.mark.parametrize("source,size", [("synthetic", 16), ("folder", 32), ("folder", 72)],
                         ids=["synthetic", "folder-small-images", "folder-large-images"])
def test_skip_batches_goes_on_where_the_stream_was(tmp_path, source, size):
  """Over epoch boundaries (the folder's train split has 11 images: a new
  shuffle every 2.75 batches), with the augmentation seeds."""
  if source == "folder":
    config = DataConfig(f"folder:{make_folder(tmp_path / 'pets')}", input_size=size, seed=3,
                        deterministic=True, randaugment_layers=0)
  else:
    config = DataConfig("synthetic", input_size=size, num_classes=5, seed=3, deterministic=True)
  stream = _batches(make_dataset(config, "train", 4, training=True), 8)
  resumed = _batches(make_dataset(config, "train", 4, training=True, skip_batches=3), 5)
  _assert_same_batches(resumed, stream[3:])
  assert not np.array_equal(resumed[0][0], stream[0][0])


def test_distributed_dataset_skips_every_replicas_batches(mirrored):
  """Two replicas fed by one pipeline: a step takes two of its batches."""
  config = DataConfig("synthetic", input_size=8, num_classes=5, seed=3, deterministic=True)

  def steps(skip, n):
    ds = distributed_dataset(mirrored, config, "train", 8, True, skip_steps=skip)
    out = []
    for step, (x, y) in zip(range(n), ds):
      out.append([(a.numpy(), b.numpy()) for a, b in zip(mirrored.experimental_local_results(x),
                                                          mirrored.experimental_local_results(y))])
    return out

  stream, resumed = steps(0, 5), steps(3, 2)
  for got, want in zip(resumed, stream[3:]):
    _assert_same_batches(got, want)


def test_saved_step_reads_the_backup(tmp_path):
  assert backup_lib.saved_step(str(tmp_path / "none")) == 0
  (tmp_path / "training_metadata.json").write_text('{"epoch": 2, "batch": 0, "step": 40}')
  assert backup_lib.saved_step(str(tmp_path)) == 40
  (tmp_path / "training_metadata.json").write_text('{"epoch": 2, "bat')  # torn write
  assert backup_lib.saved_step(str(tmp_path)) == 0
  (tmp_path / "training_metadata.json").write_text('{"epoch": 2, "batch": 0, "step": 40}')
  (tmp_path / "training_metadata.json.bkp").write_text('{"epoch": 1, "batch": 0, "step": 20}')
  (tmp_path / "latest.weights.h5").write_bytes(b"\x89HDF\r\n")  # truncated: the restore falls back
  assert backup_lib.saved_step(str(tmp_path)) == 20


def test_backup_restores_the_seed_generator_states(tmp_path, mirrored):
  """Keras' `save_weights` leaves `SeedGenerator` states out; the backup keeps
  them (here a dropout layer's, under a two-replica strategy)."""
  x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
  y = np.zeros((32, 1), "float32")

  def model():
    with mirrored.scope():
      m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dropout(0.5),
                            keras.layers.Dense(1)])
      m.compile(keras.optimizers.SGD(0.1), "mse")
    return m

  def seeds(m):
    weights = {id(w) for w in m.weights}
    return [v.numpy() for v in m.variables if id(v) not in weights]

  backup_dir = str(tmp_path / "backup")
  trained = model()
  trained.fit(x, y, batch_size=8, epochs=1, verbose=0,
              callbacks=[backup_lib.ChiefBackupAndRestore(backup_dir)])
  fresh = model()
  assert len(seeds(trained)) == 1 and not np.array_equal(seeds(fresh)[0], seeds(trained)[0])
  fresh.fit(x, y, batch_size=8, epochs=1, verbose=0,  # resumes after epoch 1: nothing to do
            callbacks=[backup_lib.ChiefBackupAndRestore(backup_dir)])
  np.testing.assert_array_equal(seeds(fresh)[0], seeds(trained)[0])
  assert int(fresh.optimizer.iterations.numpy()) == 4
