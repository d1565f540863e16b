"""A search under a latency budget (`--cost_model=latency`): it lands within
its tolerance of the target in the table's predicted ms, `decisions.json`
and the logs carry ms that are the table's prediction for `arch.txt`'s
network, and tables that do not fit the search are refused by name."""

import csv
import json
import os

import keras
import pytest

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf.data import DataConfig
from autonl_tf.search.runner import SearchConfig, search
from autonl_tf.search.space import get_space
from search_testing import make_net, random_latency_table

SIZE, CLASSES = 16, 5


def _config(tmp_path, **fields):
  data = DataConfig("synthetic", image_size=SIZE, num_classes=CLASSES, seed=1, deterministic=True)
  return SearchConfig(**{**dict(
      space="tiny", data=data, model_dir=str(tmp_path / "search"), epochs=2, warmup_epochs=1,
      steps_per_epoch=10, batch_size=16, cost="target", cost_model="latency",
      latency_table=str(tmp_path / "lut.json"), tolerance=0.1, arch_lr=0.05, dual_lr=0.5,
      penalty=2.0, validation_steps=2, landing_bn_batches=2, landing_candidates=2,
      verbose=0), **fields})


def test_a_latency_search_lands_on_its_target_in_predicted_ms(tmp_path):
  table = random_latency_table(get_space("tiny"), SIZE, CLASSES, path=tmp_path / "lut.json")
  full = make_net("tiny", SIZE, CLASSES, cost_model="latency",
                  latency_table=str(tmp_path / "lut.json"))
  start = float(full.latency())  # every decision on
  target = 0.75 * start
  keras.utils.set_random_seed(3)
  config = _config(tmp_path, target_latency_ms=target)
  lines = []
  info = search(config, log=lines.append)
  out = config.model_dir
  arch = arch_lib.load(os.path.join(out, "arch.txt"))
  predicted = table.predict(arch, SIZE, CLASSES)
  saved = json.load(open(os.path.join(out, "decisions.json")))
  assert saved["cost_model"] == "latency" and saved["target_latency_ms"] == pytest.approx(target)
  assert saved["latency_ms"] == pytest.approx(predicted, rel=1e-5) == info["latency_ms"]
  assert saved["macs"] == flops.count(arch, SIZE, CLASSES).macs
  assert saved["landing"]["chosen_by"] == "validation accuracy"
  assert abs(predicted / target - 1) <= config.tolerance
  for row in saved["landing"]["candidates"]:
    assert abs(row["latency_ms"] / target - 1) <= config.tolerance
    assert row["macs"] == flops.count(arch_lib.parse_arch("\n".join(row["arch"])), SIZE,
                                      CLASSES).macs
  assert any(f"{predicted:.3f} ms predicted" in line for line in lines), lines
  with open(os.path.join(out, "margins.csv"), newline="") as f:
    steps = list(csv.DictReader(f))
  assert len(steps) == 20 and "macs" not in steps[0]
  assert float(steps[0]["latency_ms"]) == pytest.approx(start, rel=1e-5)  # warm-up: all on
  with open(os.path.join(out, "search_log.csv"), newline="") as f:
    epochs = list(csv.DictReader(f))
  assert float(epochs[-1]["derived_latency_ms"]) > 0 and "latency_ms" in epochs[-1]


def test_tables_that_do_not_fit_the_search_are_refused_by_name(tmp_path):
  with pytest.raises(ValueError, match="cost_model=latency needs latency_table"):
    search(_config(tmp_path, latency_table=None, target_latency_ms=1.0), log=None)
  random_latency_table(get_space("tiny"), 32, CLASSES, path=tmp_path / "lut.json")
  with pytest.raises(ValueError,
                     match=r"built with \{'input_size': 32\}, not \{'input_size': 16\}"):
    search(_config(tmp_path, target_latency_ms=1.0), log=None)
  with pytest.raises(ValueError, match="needs target_latency_ms"):
    search(_config(tmp_path), log=None)
  # Flags of the other cost model are refused, not ignored.
  with pytest.raises(ValueError, match="target_macs is for cost_model=macs"):
    search(_config(tmp_path, target_latency_ms=1.0, target_macs=1e6), log=None)
  with pytest.raises(ValueError, match="are for cost_model=latency"):
    search(_config(tmp_path, cost_model="macs", target_macs=1e6), log=None)
  # A table of another activation, or of medians (built before the fastest-invoke statistic).
  table = random_latency_table(get_space("tiny"), SIZE, CLASSES, path=tmp_path / "lut.json")
  table.settings["what"] = "space tiny x1 relu6"
  table.save(str(tmp_path / "lut.json"))
  with pytest.raises(ValueError, match="built for space tiny x1 relu6, not space tiny x1: build "
                                       "one with the search's --space, --width_multiplier and "
                                       "--activation"):
    search(_config(tmp_path, target_latency_ms=1.0), log=None)
  del table.settings["statistic"]
  table.save(str(tmp_path / "lut.json"))
  with pytest.raises(ValueError, match=r"built with \{'statistic': None\}"):
    search(_config(tmp_path, target_latency_ms=1.0), log=None)
  assert not os.path.exists(tmp_path / "search")  # refused before writing anything
