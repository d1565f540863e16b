"""The search objective: every decision gets a cross-entropy force after the
warm-up, one architecture step equals the normalised-force formula computed
by hand, lambda's dead band, the landing's choice by validation accuracy
with `decisions.json` describing what `arch.txt` holds, the per-step margin
trace."""

import csv
import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from autonl_tf import flops
from autonl_tf.data import DataConfig, make_dataset
from autonl_tf.search import SearchSpace, Stage
from autonl_tf.search import cost as cost_lib
from autonl_tf.search.callbacks import MarginLog, SearchPhase
from autonl_tf.search.derive import write_derived
from autonl_tf.search.landing import Landing, land
from autonl_tf.search.runner import SearchConfig, build_supernet
from search_testing import make_net, random_latency_table

TINY = SearchSpace(name="tiny", stages=(Stage(16, 2, 1), Stage(24, 2, 2, 0.25)), stem_filters=8,
                   stem_stride=1, first_block="r1_k3_s11_e1_i8_o8", head_filters=32)
SIZE, CLASSES, STEPS = 12, 5, 6


def _config(tmp_path, **fields):
  data = DataConfig("synthetic", input_size=SIZE, num_classes=CLASSES, seed=1, deterministic=True)
  # No learning-rate ramp: the warm-up epoch trains the weights at full rate.
  return SearchConfig(**{**dict(space=TINY, data=data, model_dir=str(tmp_path), epochs=3,
                                supernet_warmup_epochs=1, steps_per_epoch=STEPS, batch_size=16,
                                lr_warmup_epochs=0.0), **fields})


def _batches(config, n):
  ds = make_dataset(config.data, "train", config.batch_size, training=True)
  return [(x.numpy(), y.numpy()) for x, y in ds.take(n)]


def _warmed_up(tmp_path, **fields):
  """A supernet after a warm-up epoch, at the start of the search proper."""
  keras.utils.set_random_seed(2)
  config = _config(tmp_path, **fields)
  net = build_supernet(config, CLASSES, STEPS)
  phase = SearchPhase(config.supernet_warmup_epochs, config.gate_dropout)
  x = np.concatenate([b[0] for b in _batches(config, STEPS)])
  y = np.concatenate([b[1] for b in _batches(config, STEPS)])
  net.fit(x, y, batch_size=config.batch_size, epochs=1, callbacks=[phase], verbose=0,
          shuffle=False)
  phase.on_epoch_begin(config.supernet_warmup_epochs)
  return config, net


def _ce_grads(net, x, y):
  with tf.GradientTape() as tape:
    logits = net(x, training=True)
    labels = tf.one_hot(y, net.num_classes)
    ce = tf.reduce_mean(keras.losses.categorical_crossentropy(
        labels, logits, from_logits=True, label_smoothing=net.label_smoothing))
  return [g.numpy() for g in tape.gradient(ce, net.arch_variables)]


def test_every_decision_has_a_cross_entropy_gradient_at_the_first_search_step(tmp_path):
  # With the default learning-rate ramp over the warm-up, as on real data.
  config, net = _warmed_up(tmp_path, lr_warmup_epochs=1.0)
  x, y = _batches(config, 1)[0]
  grads = np.abs(np.array(_ce_grads(net, x, y), dtype=float))
  assert len(grads) == len(net.decision_names) == 30 and np.isfinite(grads).all()
  assert grads.min() > 0, [n for n, g in zip(net.decision_names, grads) if g == 0]
  # The block decisions of every block, skippable (residual) ones included,
  # are not negligible next to the others. (With the residual branches
  # starting at BN gamma 0, those of the skippable blocks were.) LightNL's
  # are weak by design until LightNL has learned to matter: its BN gamma
  # starts at 0 (`SuperMBConv.build`).
  relative = grads / np.sqrt(np.mean(grads ** 2))
  weak = [n for n, r in zip(net.decision_names, relative)
          if r < 1e-2 and n.split("/")[1] in ("k5", "k7", "e_small", "e_large")]
  assert not weak, f"negligible cross-entropy gradient into {weak}"
  # Every decision starts the search the same distance from flipping.
  np.testing.assert_allclose(net.trace()[0], config.margin, atol=1e-5)


@pytest.mark.parametrize("cost_model", ["macs", "latency"])
def test_one_architecture_step_is_the_normalised_force(tmp_path, cost_model):
  """Delta(arch var) = -lr * (g_ce / rms(g_ce) + price * g_cost / rms(g_cost)),
  with g_ce from an independent tape, g_cost the closed-form MAC (or table
  latency) delta times sigmoid' (test_search and test_latency check those
  against flops and the table's sums), and lambda's step the dead-band
  formula, in the cost model's unit."""
  if cost_model == "macs":
    target, fields = 4e5, dict(target_macs=4e5)
  else:
    lut = tmp_path / "lut.json"
    random_latency_table(TINY, SIZE, CLASSES, path=lut)
    full = make_net(TINY, SIZE, CLASSES, cost_model="latency", latency_table=str(lut))
    target = 0.7 * float(full.latency())  # every decision on: 43% above the target
    fields = dict(cost_model="latency", latency_table=str(lut), target_latency_ms=target)
  config, net = _warmed_up(tmp_path, cost="target", lam=0.3, penalty=0.5,
                           dual_lr=0.2, tolerance=0.05, arch_lr=0.01, **fields)
  x, y = _batches(config, 1)[0]
  before = [v.numpy() for v in net.arch_variables]
  g_ce = np.array(_ce_grads(net, x, y))
  with tf.GradientTape() as tape:
    value = net.macs() if cost_model == "macs" else net.latency()
  g_value = np.array([g.numpy() for g in tape.gradient(value, net.arch_variables)])
  priced = float(value)  # MACs or ms
  g_cost = g_value / target
  price = 0.3 + 0.5 * (priced / target - 1)
  rms = lambda g: np.sqrt(np.mean(np.square(g)))
  force = g_ce / rms(g_ce) + price * g_cost / rms(g_cost)
  lr = float(net.arch_optimizer.learning_rate)
  net.train_on_batch(x, y)
  after = np.array([v.numpy() for v in net.arch_variables])
  np.testing.assert_allclose(after - np.array(before), -lr * force, rtol=2e-3, atol=1e-7)
  excess = priced / target - 1
  dead = max(excess - 0.05, 0) - max(-excess - 0.05, 0)
  assert float(net.lam.numpy()) == pytest.approx(0.3 + 0.2 * dead, rel=1e-5)
  assert excess > 0.05  # the step was outside the band: lambda did move
  # The running mean squares start at the first search step's values.
  assert float(net.ce_force_ms.numpy()) == pytest.approx(np.mean(g_ce ** 2), rel=2e-3)


def test_lambda_holds_inside_the_band_and_moves_outside_it():
  step = lambda m: float(cost_lib.dual_step(tf.constant(m), 100.0, 0.5, 0.03))
  assert step(102.0) == 0.0 and step(97.5) == 0.0
  assert step(110.0) == pytest.approx(0.5 * 0.07)
  assert step(80.0) == pytest.approx(-0.5 * 0.17)
  assert float(cost_lib.price("log", 0.3, 5.0, None, 9.0)) == pytest.approx(0.3)
  assert float(cost_lib.price("target", 0.3, 120.0, 100.0, 2.0)) == pytest.approx(0.7)


def test_landing_derives_the_most_accurate_candidate_and_describes_it(tmp_path):
  """Two states within tolerance: the landing evaluates both on validation
  data and keeps the more accurate; arch.txt and decisions.json are that
  state's, not the last step's."""
  config, net = _warmed_up(tmp_path, cost="target", target_macs=1e6)
  names = net.decision_names
  full = np.ones(len(names), int)
  small = full.copy()
  small[[i for i, n in enumerate(names) if n.endswith(("/k5", "/e_large"))]] = 0
  macs = {}
  for bits in (full, small):
    net.force_state(dict(zip(names, bits)))
    macs[tuple(bits)] = float(net.macs())
  net.force_state(None)
  target = sum(macs.values()) / 2  # both within the tolerance
  landing = Landing(names, tolerance=0.5)
  for bits in (full, small, small):
    landing.record(2, bits, macs[tuple(bits)], target)
  assert landing.candidates(5) == ["".join(map(str, small)), "".join(map(str, full))]
  val = make_dataset(config.data, "validation", 16, training=False).take(3)
  accuracy = {}
  for bits in landing.candidates(5):
    net.force_state(landing.state(bits))
    accuracy[bits] = net.evaluate(val, verbose=0, return_dict=True)["accuracy"]
  net.force_state(None)
  assert len(set(accuracy.values())) == 2, "both candidates equally accurate: no test"
  net.target_macs = target
  record = land(net, landing, val, config)
  best = max(accuracy, key=accuracy.get)
  assert record["chosen_by"] == "validation accuracy"
  assert [r["val_accuracy"] for r in record["candidates"]] == pytest.approx(
      [accuracy[b] for b in landing.candidates(5)])
  arch, info = write_derived(net, str(tmp_path / "out"))
  net.force_state(landing.state(best))
  want = net.derive()
  net.force_state(None)
  assert arch == want
  text = open(tmp_path / "out" / "arch.txt").read().splitlines()
  saved = json.load(open(tmp_path / "out" / "decisions.json"))
  assert saved["arch"] == text
  gates = [saved["decisions"][n.split("/")[0]][n.split("/")[1]] for n in names]
  raw = landing.state(best)
  # decisions.json's nested gates agree with the chosen raw bits.
  for n, g in zip(names, gates):
    if n.endswith(("/k5", "/e_large")):
      assert g["gate"] == raw[n]
  assert saved["macs"] == flops.count(want, SIZE, CLASSES).macs
  # With BN statistics re-estimated per candidate first (as tools/search.py
  # does): the accuracies are those of each state with its own statistics.
  from autonl_tf.training.evaluation import recalibrate_batch_norm
  x, y = (np.concatenate(a) for a in zip(*_batches(config, 4)))
  calibration = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
  config = dataclasses.replace(config, bn_recalibration_batches=3)
  want = []
  for bits in landing.candidates(5):
    net.force_state(landing.state(bits))
    recalibrate_batch_norm(net, calibration, 3)
    want.append(net.evaluate(val, verbose=0, return_dict=True)["accuracy"])
  net.force_state(None)
  record = land(net, landing, val, config, calibration_ds=calibration)
  net.force_state(None)
  assert record["bn_recalibration_batches"] == 3
  assert [r["val_accuracy"] for r in record["candidates"]] == pytest.approx(want)


def test_margin_log_has_a_row_per_step_with_every_margin(tmp_path):
  config, net = _warmed_up(tmp_path, cost="log")
  log = MarginLog(str(tmp_path))
  x, y = (np.concatenate(a) for a in zip(*_batches(config, 2)))
  net.fit(x, y, batch_size=16, epochs=1, callbacks=[log], verbose=0, shuffle=False)
  with open(tmp_path / "margins.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 2
  assert [int(r["step"]) for r in rows] == [int(net.optimizer.iterations.numpy()) - 1,
                                            int(net.optimizer.iterations.numpy())]
  last = rows[-1]
  for b in net.blocks:
    for d, m in b.margins().items():
      assert float(last[f"{b.name}/{d}"]) == pytest.approx(m, abs=1e-5)
  assert float(last["macs"]) == float(net.macs())
  assert os.listdir(tmp_path / "tensorboard" / "decisions")
