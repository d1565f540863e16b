"""autonl_tf.viz and tools/visualize.py (pure Python: the tool does not need
TensorFlow). The search logs are written by the search's own `DecisionLog`
on a real (untrained) cifar-space supernet."""

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from matplotlib import image as mpl_image

from autonl_tf import viz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOOL = os.path.join(ROOT, "tools", "visualize.py")

# The first columns of a real `tools/search.py --space=cifar13` log.
REAL_CIFAR_HEADER_START = (
    "epoch,derived_macs,accuracy,ce,lambda,loss,macs,lambda_now,sblock_0/k5,sblock_0/k7,"
    "sblock_0/e_large,sblock_0/nl,sblock_0/r1,sblock_0/r2,sblock_0/s1,sblock_1/k5,sblock_1/k7,"
    "sblock_1/e_small,sblock_1/e_large,sblock_1/nl").split(",")


@pytest.fixture(scope="module")
def supernet():
  from search_testing import make_net
  net = make_net("cifar13", 32, 10, cost="target", target_macs=4e7)
  net.build((None, 32, 32, 3))
  return net


def _append_decision_log(model_dir, net, epoch, seed=0):
  """One row written by the search's own `DecisionLog` after `epoch`
  (0-based), with the architecture variables set at random so the gates move."""
  from autonl_tf.search.callbacks import DecisionLog
  rng = np.random.default_rng(seed + epoch)
  for v in net.arch_variables:
    v.assign(rng.uniform(-1, 1))
  net.lam.assign(0.04 - 0.01 * epoch)
  callback = DecisionLog(str(model_dir))
  callback.set_model(net)
  logs = {"loss": 2.5 - 0.1 * epoch, "ce": 2.3 - 0.1 * epoch, "macs": 4.1e7 - 1e5 * epoch,
          "lambda": 0.05 - 0.01 * epoch, "accuracy": 0.1 + 0.05 * epoch}
  callback.on_epoch_end(epoch, dict(sorted(logs.items())))  # Keras hands them over sorted
  return os.path.join(model_dir, "search_log.csv")


def _header(path):
  with open(path, newline="") as f:
    return next(csv.reader(f))


@pytest.fixture
def search_dir(tmp_path, supernet):
  """A finished target-mode cifar13 search: log, config, arch.txt, decisions.json."""
  d = tmp_path / "search"
  d.mkdir()
  for epoch in range(5):
    _append_decision_log(str(d), supernet, epoch)
  (d / "search_config.json").write_text(json.dumps(
      {"cost": "target", "target_macs": 4e7, "warmup_epochs": 2, "space": "cifar13",
       "data": {"input_size": 32, "num_classes": None}}))
  (d / "arch.txt").write_text(
      "#! stem_stride=1\nr1_k3_s11_e1_i32_o16\nr1_k3_s11_e3_i16_o24_nonlocal0.125\n"
      "r1_k7_s22_e6_i24_o40_nonlocal0.125\nr1_k7_s22_e6_i40_o80_se0.25_nonlocal0.125\n"
      "r1_k7_s11_e6_i80_o96_se0.25_nonlocal0.125-2\nr1_k7_s22_e6_i96_o192_se0.25_nonlocal0.5\n"
      "r1_k7_s11_e3_i192_o320_se0.25_nonlocal0.5\n")
  (d / "decisions.json").write_text(json.dumps({"input_size": 32, "num_classes": 10}))
  return d


def assert_png(path, min_w=400, min_h=200):
  with open(path, "rb") as f:
    assert f.read(8) == PNG_MAGIC, path
  pixels = mpl_image.imread(path)
  h, w = pixels.shape[:2]
  assert (w, h) == viz.png_size(path)
  assert w >= min_w and h >= min_h, (w, h)
  assert pixels.std() > 0.01  # not a blank canvas
  return w, h


def test_header_matches_a_real_search(tmp_path, supernet):
  header = _header(_append_decision_log(str(tmp_path), supernet, 0))
  assert header[:len(REAL_CIFAR_HEADER_START)] == REAL_CIFAR_HEADER_START
  # 8 scalars + 98 gates (13 blocks x 7 decisions + 7 skippable), as in the real run
  assert len(header) == 106


def test_read_search_log(search_dir, tmp_path):
  log = viz.read_search_log(search_dir)  # a directory or the file itself
  header = _header(search_dir / "search_log.csv")
  assert list(log) == header
  assert log.path == str(search_dir / "search_log.csv")
  assert log.decision_columns == [c for c in header if "/" in c]
  assert len(log.decision_columns) == 98
  assert all(isinstance(v, np.ndarray) and v.shape == (5,) for v in log.values())
  np.testing.assert_array_equal(log["epoch"], [1, 2, 3, 4, 5])
  assert set(np.unique(np.concatenate([log[c] for c in log.decision_columns]))) <= {0.0, 1.0}
  assert log.target_macs == 4e7 and log.supernet_warmup_epochs == 2  # the field's old name
  again = viz.read_search_log(search_dir / "search_log.csv")
  assert list(again) == list(log)
  config = json.loads((search_dir / "search_config.json").read_text())
  config["supernet_warmup_epochs"] = config.pop("warmup_epochs") + 1
  (tmp_path / "search_config.json").write_text(json.dumps(config))
  (tmp_path / "search_log.csv").write_text((search_dir / "search_log.csv").read_text())
  assert viz.read_search_log(tmp_path).supernet_warmup_epochs == 3  # today's name


def test_rerun_epoch_keeps_the_last_row(tmp_path, supernet):
  for epoch, seed in ((0, 0), (1, 0), (1, 7)):
    path = _append_decision_log(str(tmp_path), supernet, epoch, seed)
  log = viz.read_search_log(path)
  np.testing.assert_array_equal(log["epoch"], [1, 2])
  with open(path, newline="") as f:
    last = list(csv.DictReader(f))[-1]
  assert [log[c][1] for c in log.decision_columns] == \
      [float(last[c]) for c in log.decision_columns]
  assert log.target_macs is None  # no search_config.json


def test_plot_search_draws_every_decision(search_dir, tmp_path):
  log = viz.read_search_log(search_dir)
  out, drawn = viz.plot_search(log, tmp_path / "pics" / "search.png")
  assert out == str(tmp_path / "pics" / "search.png")
  assert drawn == log.decision_columns
  header = _header(search_dir / "search_log.csv")
  assert sorted(drawn) == sorted(c for c in header if "/" in c)
  assert_png(out, 1000, 800)
  # From a path, and a log of the imagenet space (more gates, other names).
  _, drawn2 = viz.plot_search(str(search_dir / "search_log.csv"), tmp_path / "s2.png",
                              target_macs=3e7, title="x")
  assert drawn2 == drawn
  from search_testing import make_net
  net = make_net("autonl-imagenet", 64, 10)
  net.build((None, 64, 64, 3))
  d = tmp_path / "imnet"
  d.mkdir()
  path = _append_decision_log(str(d), net, 0)
  log = viz.read_search_log(path)
  out, drawn = viz.plot_search(log, d / "search.png")  # a single epoch
  assert drawn == [c for c in _header(path) if "/" in c] and len(drawn) > 98
  assert_png(out, 1000, 800)


@pytest.mark.parametrize("name", ["autonl-s", "autonl-l"])
def test_plot_arch_presets(name, tmp_path):
  out = viz.plot_arch(name, 224, tmp_path / f"{name}.png")
  assert out == str(tmp_path / f"{name}.png")
  w, h = assert_png(out, 1200, 400)
  assert w > 2 * h  # a row of blocks


def test_plot_arch_other_shapes(tmp_path):
  from autonl_tf.arch import load
  arch = load(["r1_k3_s11_e1_i32_o16", "r3_k3.5.7_s22_e4_i16_o24_se0.25_nonlocal1.0-2",
               "r2_k7_s12_e6_i24_o40_nonlocal0.3"])
  assert_png(viz.plot_arch(arch, (64, 48), tmp_path / "a.png", title="mixed", num_classes=7),
             600, 300)


def _write(path, text):
  path.write_text(text)
  return path


@pytest.mark.parametrize("kind", ["missing", "empty", "header_only", "no_step", "no_macs",
                                  "ragged", "not_a_number_step"])
def test_bad_log_names_the_file(kind, tmp_path):
  path = tmp_path / "search_log.csv"
  if kind == "empty":
    _write(path, "")
  elif kind == "header_only":
    _write(path, "epoch,derived_macs,sblock_0/k5\n")
  elif kind == "no_step":
    _write(path, "step,derived_macs\n1,2\n")
  elif kind == "no_macs":
    _write(path, "epoch,macs,accuracy\n1,2,0.5\n")
  elif kind == "ragged":
    _write(path, "epoch,derived_macs,sblock_0/k5\n1,2,1.0\n2,3\n")
  elif kind == "not_a_number_step":
    _write(path, "epoch,derived_macs\nfirst,2\n")
  with pytest.raises(ValueError, match=re.escape(str(path))):
    viz.read_search_log(path)
  with pytest.raises(ValueError, match=re.escape(str(path))):
    viz.plot_search(path, tmp_path / "out.png")
  assert not (tmp_path / "out.png").exists()


def run_tool(*args, cwd=None):
  return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                        timeout=120, cwd=cwd)


def test_tool_search_dir(search_dir):
  proc = run_tool(f"--search_dir={search_dir}")
  assert proc.returncode == 0, proc.stderr
  for name in ("arch.png", "search.png"):
    path = search_dir / name
    assert_png(path)
    assert f"wrote {path} (" in proc.stdout
  assert "98 decision gates" in proc.stdout
  assert viz.png_size(search_dir / "arch.png")[0] < 1600  # the 7-block searched arch


def test_tool_arch_only_and_out_dir(tmp_path):
  proc = run_tool("--arch=autonl-l", f"--out_dir={tmp_path / 'out'}", "--input_size=192")
  assert proc.returncode == 0, proc.stderr
  assert_png(tmp_path / "out" / "arch.png", 1200, 400)
  assert not (tmp_path / "out" / "search.png").exists()


def test_tool_errors(tmp_path):
  proc = run_tool(f"--search_dir={tmp_path / 'nope'}")
  assert proc.returncode == 2
  assert proc.stderr.startswith("error:") and "nope" in proc.stderr
  proc = run_tool(f"--search_dir={tmp_path}")  # exists, but nothing in it
  assert proc.returncode == 2 and "error:" in proc.stderr
  bad = _write(tmp_path / "search_log.csv", "epoch,loss\n1,2\n")
  proc = run_tool(f"--search_dir={tmp_path}")
  assert proc.returncode == 2 and "error:" in proc.stderr and str(bad) in proc.stderr
  assert not (tmp_path / "search.png").exists()
  proc = run_tool()
  assert proc.returncode == 2 and "error:" in proc.stderr


def test_no_tensorflow_imported(search_dir, tmp_path):
  """The library and the tool stay pure Python (run in a fresh process)."""
  code = (
      "import runpy, sys\n"
      "import autonl_tf.viz\n"
      f"sys.argv = [{TOOL!r}, '--search_dir={search_dir}', '--out_dir={tmp_path}']\n"
      "try:\n"
      f"  runpy.run_path({TOOL!r}, run_name='__main__')\n"
      "except SystemExit as e:\n"
      "  assert e.code == 0, e.code\n"
      "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
      "assert not heavy, heavy\n")
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tools")]))
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=120, env=env)
  assert proc.returncode == 0, proc.stderr
  assert (tmp_path / "search.png").exists() and (tmp_path / "arch.png").exists()


@pytest.mark.parametrize("values, floor", [
    ([46.42, 86.87, 86.90, 87.44, 88.03, 89.03], 86.87),  # the study's anchor, off scale
    ([50.0, 60.0, 70.0, 80.0], None),  # evenly spread: gap 10 <= 2 x 20
    ([10.0, 11.0, 90.0, 91.0], None),  # two halves: neither is "the rest"
    ([50.0, 51.0, 52.0, 99.0], None),  # far above: never cut
    ([40.0, 88.0], None),  # too few to tell
    ([40.0, 41.0, 88.0, 88.5, 89.0], 88.0),  # gap 47 > 2 x 1.0, 3 of 5 above
])
def test_off_scale_floor(values, floor):
  assert viz.off_scale_floor(values) == floor
  assert viz.off_scale_floor(values[::-1]) == floor  # order does not matter


def _rows_of(pixels, colour, right_edge):
  """Image rows (0 = top) of the pixels of `colour` ("#rrggbb") left of `right_edge`."""
  rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
  near = np.abs(pixels[:, :right_edge, :3] - rgb).max(axis=-1) < 0.03
  return np.nonzero(near)[0]


def test_plot_accuracy_vs_macs_keeps_the_rest_readable(tmp_path):
  """With a point far below (the study's anchor), the axis spans the others:
  the lowest of them is drawn in the lower part of the figure, the highest
  in the upper part, and the far one as a marker on the lower edge (on a
  46-89% axis the lowest other point would sit in the top fifth)."""
  points = [("searched", 23.7e6, 86.9), ("random", 24.1e6, 87.8), ("random", 24.3e6, 87.4),
            ("hand", 24.3e6, 89.0), ("anchor", 24.7e6, 46.4)]
  out = viz.plot_accuracy_vs_macs(points, tmp_path / "p.png", "t", budget=24.29e6)
  w, h = assert_png(out, 1000, 500)
  pixels = mpl_image.imread(out)
  axes = int(0.69 * w)  # the axes end at 0.7 of the width; the legend is to the right
  searched, hand, anchor = (_rows_of(pixels, c, axes) for c in ("#d62728", "#2ca02c", "#9467bd"))
  assert len(searched) and len(hand) and len(anchor)
  assert np.median(searched) > 0.65 * h, np.median(searched) / h
  assert np.median(hand) < 0.3 * h, np.median(hand) / h
  assert np.median(anchor) > 0.75 * h, np.median(anchor) / h
