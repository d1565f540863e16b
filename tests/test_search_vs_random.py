"""benchmarks/search_vs_random.py --quick: the whole table on synthetic data,
its numbers recomputed from the runs' own files, and a rerun that resumes
(every finished run skipped, the same table)."""

import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf import io
from autonl_tf import viz
from autonl_tf.search import sampling
from autonl_tf.search.space import get_space

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_study(workdir, *more, code=0):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "benchmarks", "search_vs_random.py"), "--quick",
       f"--workdir={workdir}", "--random=2", "--spread_seeds=2", *more],
      capture_output=True, text=True, timeout=900, cwd=ROOT)
  assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
  return proc.stdout if code == 0 else proc.stderr


def record(records, name, arch, top1):
  """A finished training's record (as --record_dir keeps it) of `arch`, with a made-up top-1."""
  os.makedirs(os.path.join(records, name))
  count = flops.count(arch, 32, 10)
  io.write_json(os.path.join(records, name, "metrics.json"),
                {"top1": top1, "macs": count.macs, "params": count.params, "max_abs_logit": 3.5,
                 "arch_text": arch_lib.format_arch(arch), "dataset": "synthetic", "epochs": 1,
                 "steps_per_epoch": 2, "eval_examples": 16})  # a --quick training's settings
  io.write_json(os.path.join(records, name, "epoch_times.json"), {"1": 20.0})


def test_quick_study_reports_every_variant_from_its_runs(tmp_path):
  workdir = str(tmp_path / "study")
  # The study pins the paper's LightNL product (its protocol predates the CIFAR preset's).
  hand = dataclasses.replace(arch_lib.scale_width(arch_lib.load("autonl-s-cifar"), 0.25),
                             nl_norm="none")
  budget = flops.count(hand, 32, 10).macs
  # Five of the seven trainings come from records (made-up results of the networks the study
  # plans: both seeds of hand-lightnl, hand-nonl and both random draws); the two others (the
  # searched network and the anchor) train.
  records = str(tmp_path / "records")
  space = get_space("cifar13", width_multiplier=0.25, nl_norm="none")
  random1, random2 = [s.arch for s in sampling.sample_within(space, budget, 2, 0, 32, 10, 0.03)]
  record(records, "hand-lightnl-seed1", hand, 4.0)
  record(records, "hand-lightnl-seed2", hand, 1.5)
  record(records, "hand-nonl", arch_lib.without_lightnl(hand), 9.5)
  record(records, "random-1", random1, 11.75)
  record(records, "random-2", random2, 14.25)
  out = run_study(workdir, f"--record_dir={records}")
  assert out.count("restored from") == 5 and "[random-2] restored from" in out
  with open(os.path.join(workdir, "study.json")) as f:
    study = json.load(f)
  assert study["budget_macs"] == budget and study["width_multiplier"] == 0.25
  trained = ["hand-lightnl.txt", "hand-nonl.txt", "random-1.txt", "search-seed1/arch.txt"]
  assert {arch_lib.load(os.path.join(workdir, f)).nl_norm for f in trained} == {"none"}
  with open(os.path.join(workdir, "search-seed1", "search_config.json")) as f:
    assert json.load(f)["nl_norm"] == "none"

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
  # What each trained network chose, against the arch files' own tokens (every line r1; the
  # fixed first block, e1, left out).
  for name, file in (("random-1", "random-1.txt"), ("searched-seed1", "search-seed1/arch.txt"),
                     ("hand-lightnl-seed1", "hand-lightnl.txt"), ("hand-nonl", "hand-nonl.txt")):
    with open(os.path.join(workdir, file)) as f:
      lines = [x for x in f.read().splitlines() if x.startswith("r1_") and "_e1_" not in x]
    want = {"blocks": len(lines), "k3": sum("_k3_" in x for x in lines),
            "k5": sum("_k5_" in x for x in lines), "k7": sum("_k7_" in x for x in lines),
            "e6": sum("_e6_" in x for x in lines), "lightnl": sum("nonlocal" in x for x in lines)}
    assert summary["composition"][name] == want, name
    assert (f"{name}: {want['blocks']} blocks, kernels 3/5/7 in {want['k3']}/{want['k5']}/"
            f"{want['k7']}, e6 in {want['e6']}, LightNL in {want['lightnl']}") in out
  assert summary["composition"]["hand-nonl"]["lightnl"] == 0
  assert summary["composition"]["hand-lightnl-seed1"]["lightnl"] > 0
  assert "anchor" not in summary["composition"]
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
  assert out.count("epoch 1:") == 3  # two trainings and the search's first epoch

  # Every run finished: skipped, the same table; each run's record is kept in --record_dir,
  # from which a lost workdir is restored: nothing trains again, the same table.
  again = run_study(workdir, f"--record_dir={records}")
  assert "epoch 1:" not in again
  table = lambda text: text[text.index("== synthetic"):text.index("plot:")]
  assert table(again) == table(out)
  assert sorted(os.listdir(os.path.join(records, "search-seed1"))) == [
      "arch.txt", "decisions.json", "epoch_times.json", "log.csv", "search_config.json",
      "search_log.csv"]
  # A second searched arm added to the finished study (the search's --decision_value=logit):
  # only its search and training run, the shared runs are skipped, and it gets its own row,
  # mean and verdict.
  arms = run_study(workdir, f"--record_dir={records}", "--decision_values=weight_norm,logit")
  assert arms.count("epoch 1:") == 2 and "[search-logit-seed1]" in arms
  with open(os.path.join(workdir, "search-logit-seed1", "search_config.json")) as f:
    assert json.load(f)["decision_value"] == "logit"
  with open(os.path.join(workdir, "search-seed1", "search_config.json")) as f:
    assert json.load(f)["decision_value"] == "weight_norm"
  with open(os.path.join(workdir, "study.json")) as f:
    summary = json.load(f)["summary"]
  logit = top1("searched-logit-seed1")
  assert summary["searched-logit"]["top1"] == [logit]
  assert summary["searched"]["top1"] == [top1("searched-seed1")]
  assert abs(summary["verdict-searched-logit"]["searched_logit_minus_random"]
             - (logit - statistics.mean(random_top1))) < 1e-9
  assert "searched-logit - random:" in arms and "\nsearched-logit " in arms
  assert os.path.exists(os.path.join(records, "searched-logit-seed1", "metrics.json"))
  err = run_study(workdir, "--decision_values=weight_norm,sigmoid", code=2)
  assert err.strip().splitlines()[-1] == (
      "error: --decision_values takes weight_norm, logit, got 'weight_norm,sigmoid'")
  lost = str(tmp_path / "lost")
  restored = run_study(lost, f"--record_dir={records}")
  assert "epoch 1:" not in restored and "[searched-seed1] restored from" in restored
  assert table(restored) == table(out)
  with open(os.path.join(lost, "random-2", "metrics.json")) as f:
    assert json.load(f)["top1"] == top1("random-2")
  # --report trains nothing: the finished runs' table (here restored from the records), the runs
  # not made yet (a third random network, a second search and its network) marked as such, out of
  # every mean.
  report = run_study(str(tmp_path / "report"), f"--record_dir={records}", "--random=3",
                     "--search_seeds=1,2", "--report")
  assert "epoch 1:" not in report and "Test:" not in report
  assert not os.path.exists(tmp_path / "report" / "random-3")
  assert not os.path.exists(tmp_path / "report" / "search-seed2")
  rows = {tuple(line.split()[:2]): line.split() for line in report.splitlines()}
  for key in (("random", "random-3"), ("searched", "searched-seed2")):
    assert rows[key][2:] == ["not", "run", "yet"] + ["-"] * 6
  for key in (("random", "random-1"), ("random", "random-2"), ("searched", "searched-seed1"),
              ("anchor", "anchor")):
    assert rows[key] == next(line.split() for line in out.splitlines()
                             if tuple(line.split()[:2]) == key)
  mean = next(line.split() for line in report.splitlines() if line.split()[:2] == ["random", "2"])
  assert mean[2] == f"{statistics.mean(random_top1):.2f}"
  # A record of another network than the plan's is refused, naming it.
  shutil.rmtree(lost)
  metrics = os.path.join(records, "random-1", "metrics.json")
  with open(metrics) as f:
    kept = json.load(f)
  with open(metrics, "w") as f:
    json.dump(dict(kept, arch_text=kept["arch_text"].replace("_k3_", "_k5_", 1)), f)
  err = run_study(lost, f"--record_dir={records}", code=2)
  assert err.strip().splitlines()[-1] == (
      f"error: {metrics} records another network than the {lost}/random-1.txt this code "
      "plans: pass another --record_dir")
  # Another protocol into the same directory: one error line, nothing run.
  # Times: epochs x the fastest epoch (a paused or shared epoch does not count), wall sum kept.
  with open(os.path.join(workdir, "random-1", "epoch_times.json"), "w") as f:
    json.dump({"1": 61.0, "2": 1500.0, "3": 66.0}, f)  # made up: one epoch paused
  rows = [line.split() for line in run_study(workdir).splitlines()]
  assert next(r for r in rows if r[:2] == ["random", "random-1"])[7] == "3"  # 3 x 61 s
  with open(os.path.join(workdir, "study.json")) as f:
    assert json.load(f)["summary"]["times_s"]["random-1"] == {"wall": 1627.0, "alone": 183.0}
  err = run_study(workdir, "--epochs=2", code=2)
  assert err.strip().splitlines()[-1] == (
      f"error: {workdir} holds a study with other settings (epochs: 1 there, 2 now); pass "
      "another --workdir")

  # A resumed study whose preset changed (here: its hand-lightnl file holds another network)
  # is refused before anything runs, not trained on two networks.
  hand = os.path.join(workdir, "hand-lightnl.txt")
  with open(os.path.join(workdir, "hand-nonl.txt")) as f, open(hand, "w") as g:
    g.write(f.read())
  err = run_study(workdir, code=2)
  assert err.strip().splitlines()[-1].startswith(f"error: {hand} holds another network than")
