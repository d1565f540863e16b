"""benchmarks/search_vs_random.py --quick: the whole table on synthetic data,
its numbers recomputed from the runs' own files, and a rerun that resumes
(every finished run skipped, the same table)."""

import json
import os
import statistics
import subprocess
import sys

import pytest

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf import viz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_study(workdir, *more, code=0):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "benchmarks", "search_vs_random.py"), "--quick",
       f"--workdir={workdir}", "--random=2", "--spread_seeds=2", *more],
      capture_output=True, text=True, timeout=900, cwd=ROOT)
  assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
  return proc.stdout if code == 0 else proc.stderr


def test_quick_study_reports_every_variant_from_its_runs(tmp_path):
  workdir = str(tmp_path / "study")
  out = run_study(workdir)
  with open(os.path.join(workdir, "study.json")) as f:
    study = json.load(f)
  budget = flops.count(arch_lib.scale_width(arch_lib.load("autonl-s-cifar"), 0.25), 32, 10).macs
  assert study["budget_macs"] == budget and study["width_multiplier"] == 0.25

  def top1(name):
    with open(os.path.join(workdir, name, "metrics.json")) as f:
      return json.load(f)["top1"]

  runs = {"searched": ["searched-seed1"], "random": ["random-1", "random-2"],
          "hand-lightnl": ["hand-lightnl-seed1"], "hand-nonl": ["hand-nonl"], "anchor": ["anchor"]}
  summary = study["summary"]
  for variant, names in runs.items():
    values = [top1(n) for n in names]
    assert summary[variant]["top1"] == values
    assert abs(summary[variant]["mean"] - statistics.mean(values)) < 1e-9
    assert f"\n{variant} " in out
  with open(os.path.join(workdir, "anchor", "metrics.json")) as f:
    anchor_metrics = json.load(f)
  anchor_row = next(line for line in out.splitlines() if line.startswith("anchor "))
  assert f"{anchor_metrics['max_abs_logit']:.3g}" in anchor_row.split()
  # Pooled std of searched (n=1, no spread) and random (n=2) is random's.
  random_top1 = [top1(n) for n in runs["random"]]
  verdict = summary["verdict"]
  assert abs(verdict["pooled_std"] - statistics.stdev(random_top1)) < 1e-9
  assert abs(verdict["searched_minus_random"] - (top1("searched-seed1") -
                                                 statistics.mean(random_top1))) < 1e-9
  # The random networks are the files trained, within 3% of the budget.
  for name in runs["random"]:
    arch = arch_lib.load(os.path.join(workdir, f"{name}.txt"))
    assert abs(flops.count(arch, 32, 10).macs / budget - 1) <= 0.03
  spread = [top1("hand-lightnl-seed1"), top1("hand-lightnl-seed2")]
  assert f"max - min {max(spread) - min(spread):.2f} points" in out
  with open(os.path.join(workdir, "anchor.json")) as f:
    anchor = json.load(f)
  assert anchor["name"].startswith("keras:mobilenet_v2:")
  w, h = viz.png_size(study["plot"])
  assert w > 500 and h > 300
  assert out.count("epoch 1:") == 8  # seven trainings and the search's first epoch

  again = run_study(workdir)  # every run finished: skipped, the same table
  assert "epoch 1:" not in again
  table = lambda text: text[text.index("== synthetic"):text.index("plot:")]
  assert table(again) == table(out)
  # Another protocol into the same directory: one error line, nothing run.
  err = run_study(workdir, "--epochs=2", code=2)
  assert err.strip().splitlines()[-1] == (
      f"error: {workdir} holds a study with other settings (epochs: 1 there, 2 now); pass "
      "another --workdir")

  check_latency_vs_macs(workdir, str(tmp_path))


def check_latency_vs_macs(study_dir, tmp):
  """benchmarks/latency_vs_macs.py --quick on the quick study: the target is
  the study's searched network timed here, the latency search prices ms
  against it and lands on measured latency, its network is trained by the
  study's protocol, every trained network gets a row, and a rerun reports
  the same table from the kept timings without training again."""
  from autonl_tf import latency
  from autonl_tf.search.space import get_space
  from search_testing import random_latency_table
  space = get_space("cifar", width_multiplier=0.25)
  table = random_latency_table(space, 32, 10)
  table.calibration["scale"] = 0.03  # predictions of the order of these networks' real ms
  table.settings.update(what=latency.space_what(space), threads=1, warmup=2, repeats=5, passes=1,
                        machine={"cpu": latency.cpu_model()})
  lut = os.path.join(tmp, "lut.json")
  table.save(lut)
  workdir = os.path.join(tmp, "latency_vs_macs")

  def run(*more, code=0):
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "latency_vs_macs.py"), "--quick",
         f"--study={study_dir}", f"--latency_table={lut}", f"--workdir={workdir}", *more],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout if code == 0 else proc.stderr

  out = run()
  with open(os.path.join(workdir, "latency.json")) as f:
    timings = json.load(f)
  target = timings["searched-seed1"]
  assert f"target: searched-seed1 measured {target:.3f} ms" in out
  with open(os.path.join(workdir, "latency-search-seed1", "decisions.json")) as f:
    decisions = json.load(f)
  assert decisions["cost_model"] == "latency" and decisions["target_latency_ms"] == target
  arch = arch_lib.load(os.path.join(workdir, "latency-search-seed1", "arch.txt"))
  assert decisions["latency_ms"] == pytest.approx(table.predict(arch, 32, 10), rel=1e-5)
  with open(os.path.join(workdir, "latency-searched-seed1", "metrics.json")) as f:
    trained = json.load(f)
  assert trained["macs"] == flops.count(arch, 32, 10).macs
  rows = [line.split() for line in out.splitlines()
          if len(line.split()) == 8 and line.split()[0] in
          ("searched", "random", "hand-lightnl", "hand-nonl", "anchor", "latency-searched")]
  assert sorted(r[1] for r in rows) == sorted(
      ["hand-lightnl-seed1", "hand-lightnl-seed2", "searched-seed1", "random-1", "random-2",
       "hand-nonl", "anchor", "latency-searched-seed1"])
  for r in rows:  # top-1 from the run's metrics, ms from the kept timings, sorted by ms
    assert r[3] == f"{timings[r[1]]:.3f}"
  assert [float(r[3]) for r in rows] == sorted(float(r[3]) for r in rows)
  lat = next(r for r in rows if r[0] == "latency-searched")
  assert lat[2] == f"{trained['top1']:.2f}"
  assert float(lat[4]) == pytest.approx(decisions["latency_ms"], abs=1e-3)
  assert out.count("epoch 1:") == 2  # the latency search's and its network's training
  again = run()
  assert "epoch 1:" not in again
  assert again[again.index("== 32px"):] == out[out.index("== 32px"):]
  err = run("--search_seed=7", code=2)
  assert "the study's searched-seed7 is not trained yet" in err.strip().splitlines()[-1]
