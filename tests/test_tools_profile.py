"""tools/profile.py end to end (subprocess, as a user runs it)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_tool(*args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "profile.py"), *args],
                        capture_output=True, text=True, timeout=120)


def test_json_published_numbers():
  for name, macs, params in [("autonl-s", 266_878_784, 4_389_350), ("autonl-l", 352_829_728, 5_580_336)]:
    proc = run_tool(f"--arch={name}", "--format=json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["macs"], out["params"]) == (macs, params)
    assert round(out["macs"] / 1e6, 1) == {"autonl-s": 266.9, "autonl-l": 352.8}[name]
    assert sum(b["macs"] for b in out["blocks"]) + out["stem"]["macs"] + out["head"]["macs"] == macs


def test_table_and_arch_file(tmp_path):
  path = tmp_path / "arch.txt"
  path.write_text("#! stem_stride=1\nr1_k3_s11_e1_i32_o16\nr1_k5_s22_e6_i16_o24_nonlocal0.25-2\n")
  proc = run_tool(f"--arch={path}", "--input_size=32", "--num_classes=10")
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.splitlines()
  assert "32x32" in lines[4] and "r0.25 s2" in lines[5]
  assert lines[-1].startswith("total: ")


def test_bad_arch_is_a_clear_error(tmp_path):
  path = tmp_path / "arch.txt"
  path.write_text("r1_k3_s11_e1_i32_o16\nr1_k3_s11_e1_i16_o16_se2\n")
  proc = run_tool(f"--arch={path}")
  assert proc.returncode == 2
  assert "line 2: bad token 'se2'" in proc.stderr and "Traceback" not in proc.stderr
  proc = run_tool("--arch=/no/such/file.txt")
  assert proc.returncode == 2 and "neither a preset" in proc.stderr and "Traceback" not in proc.stderr


def test_arch_limits_refuse_and_can_be_raised(tmp_path):
  """Issue 18, point 3: this arch used to be profiled as 131,400,015,336
  params with exit 0 (and tools/train.py grew to 13.6 GB building it)."""
  path = tmp_path / "arch.txt"
  path.write_text("r1_k3_s11_e1_i32_o99999999\n")
  proc = run_tool(f"--arch={path}")
  assert proc.returncode == 2 and proc.stdout == ""
  assert proc.stderr.strip() == (f"error: {path}: line 1: 'o99999999': 99,999,999 output "
                                 "channels, above the limit of 16,384 (raise it with "
                                 "--arch_limits=width=N)")
  proc = run_tool(f"--arch={path}", "--arch_limits=width=1e8,params=1e12")
  assert proc.returncode == 2 and "MACs, above the limit of 1,000,000,000,000" in proc.stderr
  proc = run_tool(f"--arch={path}", "--arch_limits=width=1e8,params=1e12,macs=1e16",
                  "--format=json")
  assert proc.returncode == 0, proc.stderr
  from autonl_tf import arch, flops
  big = arch.parse_arch(path.read_text(), arch.ArchLimits(width=10 ** 8))
  assert json.loads(proc.stdout)["params"] == flops.count(big, 224, 1000).params > 1.3e11
  proc = run_tool("--arch=autonl-s", "--arch_limits=size=3")
  assert proc.returncode == 2 and "unknown arch limit 'size=3'" in proc.stderr


def test_latency_table_predicts_ms_per_block_and_in_total(tmp_path):
  """Every entry distinct: a block's ms is its MBConv entry plus its
  LightNL's (a repeat counted again), each without the invoke overhead; the
  total adds the overhead once (hand sums of the entries)."""
  from autonl_tf import arch, latency
  path = tmp_path / "arch.txt"
  path.write_text("#! stem_stride=1\nr1_k3_s11_e1_i32_o16\nr2_k5_s22_e6_i16_o24_nonlocal0.25-2\n")
  net = arch.load(str(path))
  pieces = latency.arch_pieces(net, 32, 10)
  ms = {p.key: 0.1 * (i + 1) for i, p in enumerate(pieces)}  # the repeat's LightNL: one key
  ms["overhead"] = 0.05
  table = latency.LatencyTable({k: {"ms": v} for k, v in ms.items()},
                               {"input_size": 32, "num_classes": 10,
                                "statistic": latency.STATISTIC})
  table.save(str(tmp_path / "lut.json"))
  proc = run_tool(f"--arch={path}", "--input_size=32", "--num_classes=10", "--format=json",
                  f"--latency_table={tmp_path / 'lut.json'}")
  assert proc.returncode == 0, proc.stderr
  out = json.loads(proc.stdout)
  e = [ms[p.key] - 0.05 for p in pieces]  # stem, mb0, mb1, nl1, mb2, nl2, head
  want = [e[1], e[2] + e[3], e[4] + e[5]]
  assert [b["latency_ms"] for b in out["blocks"]] == pytest.approx(want)
  assert out["stem"]["latency_ms"] == pytest.approx(e[0])
  assert out["head"]["latency_ms"] == pytest.approx(e[6])
  assert out["latency_ms"] == pytest.approx(0.05 + sum(e)) == table.predict(net, 32, 10)
  proc = run_tool(f"--arch={path}", "--input_size=32", "--num_classes=10",
                  f"--latency_table={tmp_path / 'lut.json'}")
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.splitlines()[-1] == (f"predicted latency: {0.05 + sum(e):.3f} ms (invoke "
                                          "overhead 0.050 ms included)")
  assert proc.stdout.splitlines()[5].split()[-1] == f"{want[1]:.3f}"
  proc = run_tool(f"--arch={path}", "--latency_table={}".format(tmp_path / "lut.json"))
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert "built with {'input_size': 32, 'num_classes': 10}" in proc.stderr
