"""tools/profile.py end to end (subprocess, as a user runs it)."""

import json
import os
import subprocess
import sys

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
