"""benchmarks/latency_vs_macs.py --quick on a quick study's files: the
target is the study's searched network timed here, the latency search prices
ms against it with the study's settings and lands on measured latency, its
network is trained by the study's protocol, every trained network gets a row
(its top-1 from its metrics.json, its ms from one read-out that times them
all, passes interleaved), a rerun reports the kept read-out without training
or timing again, and a network trained since makes it time them all again.

The study here is its files (plan.json with search_vs_random's --quick
settings, arch files, metrics.json of finished trainings with made-up top-1
values), which is all the benchmark reads of it: the quick study itself is
tests/test_search_vs_random.py's."""

import dataclasses
import os
import subprocess
import sys

import pytest

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf import io
from autonl_tf import latency
from autonl_tf.search import pieces as search_pieces
from autonl_tf.search import sampling
from autonl_tf.search.space import get_space
from search_testing import random_latency_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH = 0.25


def make_study(study):
  """The files of a quick study with four finished trainings; {run: top-1}."""
  for run in ("search-seed1", "searched-seed1", "random-1", "hand-lightnl-seed1",
              "hand-lightnl-seed2", "anchor"):
    os.makedirs(os.path.join(study, run))
  hand = dataclasses.replace(arch_lib.scale_width(arch_lib.load("autonl-s-cifar"), WIDTH),
                             nl_norm="none")  # the study's product
  budget = flops.count(hand, 32, 10).macs
  io.write_json(os.path.join(study, "plan.json"), {
      "budget_macs": budget, "width_multiplier": WIDTH, "quick": True, "epochs": 1,
      "steps_per_epoch": 2, "seed": 1, "tolerance": 0.03, "random_seed": 0, "search_epochs": 2,
      "search_warmup_epochs": 1, "search_steps": 2, "search_batch_size": 8})
  space = get_space("cifar13", width_multiplier=WIDTH, nl_norm="none")
  searched, random1 = (s.arch for s in sampling.sample_within(space, budget, 2, 5, 32, 10))
  archs = {"search-seed1/arch.txt": searched, "random-1.txt": random1, "hand-lightnl.txt": hand}
  for path, arch in archs.items():
    io.write_text(os.path.join(study, path), arch_lib.format_arch(arch))
  io.write_json(os.path.join(study, "anchor.json"), {"name": "keras:mobilenet_v2:0.35"})
  trained = {"searched-seed1": (searched, 41.5), "random-1": (random1, 38.25),
             "hand-lightnl-seed1": (hand, 40.0), "hand-lightnl-seed2": (hand, 39.5),
             "anchor": (None, 35.0)}
  for name, (arch, top1) in trained.items():
    macs, params = ((flops.count(arch, 32, 10).macs, flops.count(arch, 32, 10).params) if arch
                    else (5e6, 4e5))  # the anchor's counts are not what is tested here
    io.write_json(os.path.join(study, name, "metrics.json"),
                  {"top1": top1, "macs": macs, "params": params})
  return {name: top1 for name, (_, top1) in trained.items()}


def check_readout(order, names, entries):
  """`order` (the networks in the order the read-out timed them) is 2 passes
  through `names`, then passes (in the same order) through those whose two
  fastest passes differed by more than 3%, up to 8 in all; `entries` say so."""
  assert order[:2 * len(names)] == names + names
  passes = [(order[:i + 1].count(n), names.index(n)) for i, n in enumerate(order)]
  assert passes == sorted(passes)  # pass after pass, each in the networks' order
  for name in names:
    entry = entries[name]
    assert len(entry["passes_ms"]) == order.count(name) <= 8
    assert entry["ms"] == min(entry["passes_ms"])
    assert entry["settled"] == latency.settled(entry["passes_ms"])
    assert entry["settled"] or order.count(name) == 8
    for k in range(3, len(entry["passes_ms"]) + 1):  # timed again only while unsettled
      assert not latency.settled(entry["passes_ms"][:k - 1])


def test_latency_vs_macs_targets_the_studys_searched_network(tmp_path):
  study = str(tmp_path / "study")
  top1 = make_study(study)
  space = get_space("cifar13", width_multiplier=WIDTH, nl_norm="none")
  table = random_latency_table(space, 32, 10)
  table.calibration["scale"] = 0.03  # predictions of the order of these networks' real ms
  table.settings.update(what=search_pieces.space_what(space), threads=1, warmup=2, repeats=5,
                        passes=2, machine={"cpu": latency.cpu_model()})
  lut = str(tmp_path / "lut.json")
  table.save(lut)
  workdir = str(tmp_path / "latency_vs_macs")
  timings_path = os.path.join(workdir, "latency.json")

  def run(*more, code=0):
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "latency_vs_macs.py"), "--quick",
         f"--study={study}", f"--latency_table={lut}", f"--workdir={workdir}", *more],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout if code == 0 else proc.stderr

  def rows_of(out):
    return [line.split() for line in out.splitlines()
            if len(line.split()) == 8 and line.split()[0] in
            ("searched", "random", "hand-lightnl", "anchor", "latency-searched")]

  def timed(out):  # the networks in the order the read-out timed them
    return [line.split()[-1] for line in out.splitlines() if line.startswith("read-out timing")]

  out = run()
  timings = io.read_json(timings_path)
  target = timings["targets"]["searched-seed1"]
  assert f"target: searched-seed1 measured {target:.3f} ms" in out
  decisions = io.read_json(os.path.join(workdir, "latency-search-seed1", "decisions.json"))
  assert decisions["cost_model"] == "latency" and decisions["target_latency_ms"] == target
  config = io.read_json(os.path.join(workdir, "latency-search-seed1", "search_config.json"))
  assert (config["landing_latency"], config["width_multiplier"], config["epochs"],
          config["steps_per_epoch"], config["optimizer"]) == ("measured", WIDTH, 2, 2, "sgd")
  assert config["nl_norm"] == "none"  # the study's product, not the cifar space's own
  arch = arch_lib.load(os.path.join(workdir, "latency-search-seed1", "arch.txt"))
  assert decisions["latency_ms"] == pytest.approx(table.predict(arch, 32, 10), rel=1e-5)
  trained = io.read_json(os.path.join(workdir, "latency-searched-seed1", "metrics.json"))
  assert trained["macs"] == flops.count(arch, 32, 10).macs and trained["epochs"] == 1
  top1["latency-searched-seed1"] = trained["top1"]
  names = sorted(top1)
  # One read-out of every trained network, the passes interleaved: all once, then all again,
  # then again (in the same order) those whose two fastest passes differ by more than 3%.
  readout = timings["readout"]
  assert sorted(readout["networks"]) == names
  check_readout(timed(out), names, readout["entries"])
  rows = rows_of(out)
  assert sorted(r[1] for r in rows) == names
  base = readout["entries"]["searched-seed1"]["ms"]
  for r in rows:  # top-1 from the run's metrics, ms from the read-out, sorted by ms
    ms = readout["entries"][r[1]]["ms"]
    assert (r[2], r[3], r[5]) == (f"{top1[r[1]]:.2f}", f"{ms:.3f}", f"{100 * (ms / base - 1):+.1f}%")
  assert [float(r[3]) for r in rows] == sorted(float(r[3]) for r in rows)
  lat = next(r for r in rows if r[0] == "latency-searched")
  assert float(lat[4]) == pytest.approx(decisions["latency_ms"], abs=1e-3)
  assert (f"latency-searched - MAC-searched: {trained['top1'] - 41.5:+.2f} points top-1"
          in out)
  assert "the study's seed spread (hand-lightnl, 2 seeds): 0.50 points" in out
  assert out.count("epoch 1:") == 2  # the latency search's and its network's training
  # A rerun reports the kept read-out (made up here, so it cannot be a new timing) and the
  # target its search was given (its kept timing removed here: read back from the search's
  # decisions, not timed again after the search), and neither trains nor times.
  made_up = {name: {"ms": 1.0 + i / 8, "passes_ms": [1.0 + i / 8, 1.01 + i / 8]}
             for i, name in enumerate(names)}
  timings["readout"]["entries"] = made_up
  del timings["targets"]
  io.write_json(timings_path, timings)
  again = run()
  assert "epoch 1:" not in again and not timed(again)
  assert f"target: searched-seed1 measured {target:.3f} ms" in again
  assert io.read_json(timings_path)["targets"] == {"searched-seed1": target}
  assert {r[1]: r[3] for r in rows_of(again)} == {n: f"{e['ms']:.3f}" for n, e in made_up.items()}
  # A network trained since, and random-1 now another arch under the same name: the read-out
  # is taken again, whole, so all are timed together.
  new1, extra = (s.arch for s in sampling.sample_within(  # the draws after the study's two
      get_space("cifar13", width_multiplier=WIDTH, nl_norm="none"),
      io.read_json(os.path.join(study, "plan.json"))["budget_macs"], 4, 5, 32, 10)[2:])
  io.write_text(os.path.join(study, "random-1.txt"), arch_lib.format_arch(new1))
  os.makedirs(os.path.join(study, "random-2"))
  io.write_text(os.path.join(study, "random-2.txt"), arch_lib.format_arch(extra))
  count = flops.count(extra, 32, 10)
  io.write_json(os.path.join(study, "random-2", "metrics.json"),
                {"top1": 37.0, "macs": count.macs, "params": count.params})
  converted = {f: os.stat(os.path.join(workdir, "tflite", f)).st_mtime_ns
               for f in os.listdir(os.path.join(workdir, "tflite"))}
  assert len(converted) == len(names)
  third = run()
  entries = io.read_json(timings_path)["readout"]["entries"]
  check_readout(timed(third), sorted(names + ["random-2"]), entries)
  assert "random-2" in [r[1] for r in rows_of(third)]
  now = {f: os.stat(os.path.join(workdir, "tflite", f)).st_mtime_ns
         for f in os.listdir(os.path.join(workdir, "tflite"))}
  # ... from the models converted before (kept, not converted again) and two new ones: random-2
  # and random-1's new arch (its digest differs, so it is not the old model)
  assert len(now) == len(names) + 2 and {f: now[f] for f in converted} == converted
  assert sum(f.startswith("random-1-") for f in now) == 2
  assert all(entries[n]["passes_ms"] != made_up[n]["passes_ms"] for n in names)
  err = run("--search_seed=7", code=2)
  assert "the study's searched-seed7 is not trained yet" in err.strip().splitlines()[-1]
