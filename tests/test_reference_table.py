"""benchmarks/reference_table.py --quick: the table on synthetic data, its
numbers recomputed from the runs' own files, the latency sitting (a run
restored from its record, its model gone, timed from its architecture), and
a rerun that trains nothing (every run skipped or restored from its record)."""

import json
import os
import statistics
import subprocess
import sys

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf import io
from autonl_tf import viz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_table(workdir, *more, code=0):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "benchmarks", "reference_table.py"), "--quick",
       f"--workdir={workdir}", "--networks=autonl-s-cifar-x0.5,resnet20", *more],
      capture_output=True, text=True, timeout=900, cwd=ROOT)
  assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
  return proc.stdout if code == 0 else proc.stderr


def test_quick_reference_table(tmp_path):
  workdir, records = str(tmp_path / "table"), str(tmp_path / "records")
  half = arch_lib.scale_width(arch_lib.load("autonl-s-cifar"), 0.5)
  # The second seed comes from a (made-up) record, as after a lost workdir: not trained, its
  # final.keras nowhere; the two others train.
  count = flops.count(half, 32, 10)
  kept = os.path.join(records, "autonl-s-cifar-x0.5-seed2")
  os.makedirs(kept)
  io.write_json(os.path.join(kept, "metrics.json"),
                {"top1": 13.5, "top5": 55.25, "macs": count.macs, "params": count.params,
                 "max_abs_logit": 2.5, "arch_text": arch_lib.format_arch(half)})
  io.write_json(os.path.join(kept, "epoch_times.json"), {"1": 20.0})
  out = run_table(workdir, f"--record_dir={records}")
  assert "[autonl-s-cifar-x0.5-seed2] restored from" in out and out.count("epoch 1:") == 2
  names = ["autonl-s-cifar-x0.5-seed1", "autonl-s-cifar-x0.5-seed2", "resnet20-seed1"]
  metrics = {}
  for name in names:
    with open(os.path.join(workdir, name, "metrics.json")) as f:
      metrics[name] = json.load(f)
  assert metrics[names[0]]["arch_text"] == arch_lib.format_arch(half)
  assert metrics[names[0]]["macs"] == flops.count(half, 32, 10).macs
  assert (metrics["resnet20-seed1"]["macs"], metrics["resnet20-seed1"]["params"]) == (
      40_555_136, 269_722)
  with open(os.path.join(workdir, "latency.json")) as f:
    timings = json.load(f)
  rows = {tuple(line.split()[:2]): line.split() for line in out.splitlines()}
  for name in names:
    network, seed = name.rsplit("-seed", 1)
    row = rows[(network, seed)]
    m = metrics[name]
    assert row[2:6] == [f"{m['top1']:.2f}", f"{m['top5']:.2f}", f"{m['params'] / 1e6:.2f}M",
                        f"{m['macs'] / 1e6:.1f}M"], row
    for i, variant in ((6, "float32"), (7, "int8")):
      entry = timings["entries"][f"{name} {variant}"]
      assert entry["ms"] > 0 and entry["ms"] == min(entry["passes_ms"])
      assert row[i] == f"{entry['ms']:.3f}"
    if name == names[1]:  # timed from its architecture: no agreement
      assert name in timings["timed_from_arch"] and row[8] == "-"
      assert name not in timings["int8_top1_agreement"]
    else:
      assert 0 <= timings["int8_top1_agreement"][name] <= 1
  assert timings["settings"]["threads"] == 1 and timings["settings"]["batch"] == 1
  top1 = [metrics[n]["top1"] for n in names[:2]]
  spread = max(top1) - min(top1)
  assert (f"autonl-s-cifar-x0.5 seeds: {top1[0]:.2f} / {top1[1]:.2f}, mean "
          f"{statistics.mean(top1):.2f}, spread (max - min) {spread:.2f} points") in out
  diff = statistics.mean(top1) - metrics["resnet20-seed1"]["top1"]
  assert (f"autonl-s-cifar-x0.5 (mean) - resnet20: {diff:+.2f} points; more than the seed "
          f"spread: {'yes' if diff > spread else 'no'}") in out
  for suffix in ("macs", "ms"):
    w, h = viz.png_size(os.path.join(workdir, f"reference_{suffix}.png"))
    assert w > 500 and h > 300
  # Every run finished: nothing trains or converts again, the same table.
  table = lambda text: text[text.index("| network") if "| network" in text else
                            text.index("network"):text.index("plots:")]
  again = run_table(workdir, f"--record_dir={records}")
  assert "epoch 1:" not in again and "converted" not in again
  assert table(again) == table(out)
  # A lost workdir is restored from the records: nothing trains again.
  lost = run_table(str(tmp_path / "lost"), f"--record_dir={records}", "--report")
  assert "epoch 1:" not in lost and lost.count("restored from") == 3
  assert table(lost) == table(out)
  err = run_table(workdir, "--networks=resnet18", code=2)
  assert err.strip().splitlines()[-1].startswith("error: --networks takes autonl-s-cifar-x0.5, ")
