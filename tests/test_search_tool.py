"""tools/search.py end to end on synthetic data (the contract command), its
outputs, bad input, and the same command twice (resume: tests/test_resume.py)."""

import csv
import json
import os
import subprocess
import sys

import pytest

from autonl_tf import arch as arch_lib
from autonl_tf import flops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_contract_command(tmp_path):
  model_dir = tmp_path / "search"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "search.py"), "--space=cifar",
       "--dataset=synthetic", "--input_size=32", "--num_classes=10", "--epochs=1",
       "--steps_per_epoch=5", "--batch_size=8", "--decision_value=logit",
       f"--model_dir={model_dir}"],
      capture_output=True, text=True, timeout=600, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "epoch 1: ce=" in proc.stdout and "derived:" in proc.stdout
  arch = arch_lib.load(str(model_dir / "arch.txt"))
  decisions = json.loads((model_dir / "decisions.json").read_text())
  assert decisions["macs"] == flops.count(arch, 32, 10).macs
  assert decisions["macs"] == pytest.approx(decisions["supernet_macs"])
  # The cifar space's own LightNL product (no --nl_norm), recorded resolved for a resume.
  assert arch.nl_norm == "second_moment"
  config = json.loads((model_dir / "search_config.json").read_text())
  assert (config["nl_norm"], config["activation"]) == ("second_moment", "swish")
  assert config["decision_value"] == "logit"
  assert len(decisions["decisions"]) == 17 and "k7" in decisions["decisions"]["sblock_0"]
  with open(model_dir / "search_log.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 1 and "sblock_12/nl" in rows[0] and "derived_macs" in rows[0]
  # The derived arch is accepted by the profiler and the trainer's builder.
  prof = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "profile.py"),
                         f"--arch={model_dir / 'arch.txt'}", "--input_size=32", "--num_classes=10",
                         "--format=json"], capture_output=True, text=True, timeout=60)
  assert json.loads(prof.stdout)["macs"] == decisions["macs"]


def test_bad_input_size_is_one_line(tmp_path):
  """Issue 18, point 7: --input_size=0 failed with a multi-line Keras message."""
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "search.py"), "--space=tiny",
       "--dataset=synthetic", "--input_size=0", "--num_classes=4", f"--model_dir={tmp_path}"],
      capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == (
      "error: the input size (input_size, --input_size) must be a positive number of pixels, "
      "got 0")
  assert "Traceback" not in proc.stderr and not os.listdir(tmp_path)


def test_same_command_and_seed_give_the_same_search(tmp_path):
  """The same command with the same --seed and --deterministic, twice: the
  same architecture, the same margins at every step, the same landing.
  Under a latency budget (--cost_model=latency), so that the tool's latency
  flags are exercised end to end too: the landed network's predicted ms is
  the table's sum for arch.txt."""
  from autonl_tf.search.space import get_space
  from search_testing import random_latency_table
  lut = tmp_path / "lut.json"
  table = random_latency_table(get_space("tiny"), 16, 5, path=lut)

  def run(name):
    model_dir = tmp_path / name
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "search.py"), "--space=tiny",
         "--dataset=synthetic", "--input_size=16", "--num_classes=5", "--epochs=2",
         "--warmup_epochs=0", "--steps_per_epoch=4", "--batch_size=8", "--cost=target",
         "--cost_model=latency", f"--latency_table={lut}", "--target_latency_ms=4",
         "--tolerance=0.6", "--validation_steps=2", "--seed=3",
         "--deterministic", f"--model_dir={model_dir}"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    decisions = json.loads((model_dir / "decisions.json").read_text())
    decisions.pop("search_time_s")
    return ((model_dir / "arch.txt").read_text(), (model_dir / "margins.csv").read_text(),
            decisions)

  first, second = run("a"), run("b")
  assert second[0] == first[0]
  assert second[1] == first[1] and len(first[1].splitlines()) == 1 + 2 * 4  # a row per step
  assert second[2] == first[2]
  assert first[2]["landing"]["chosen_by"] == "validation accuracy"
  assert first[2]["latency_ms"] == pytest.approx(
      table.predict(arch_lib.parse_arch(first[0]), 16, 5), rel=1e-5)
  assert abs(first[2]["latency_ms"] / 4 - 1) <= 0.6
  # The margins moved: the two runs agree on a search that did something.
  rows = [line.split(",") for line in first[1].splitlines()[1:]]
  assert rows[0][4:] != rows[-1][4:]
