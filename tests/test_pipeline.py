"""tools/run_pipeline.py's stages on the `smoke` config: a run stopped in the
training stage resumes there (search skipped, training from its backup),
the resumed run finishes every stage, and a rerun skips them all."""

import json
import os
import subprocess
import sys

import keras
import pytest

from autonl_tf import flops
from autonl_tf import pipeline
from autonl_tf.arch import presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class StopAfterFirstEpoch(keras.callbacks.Callback):
  def on_epoch_end(self, epoch, logs=None):
    raise KeyboardInterrupt("simulated kill in the training stage")


def test_pipeline_stops_resumes_and_skips(tmp_path):
  workdir = str(tmp_path / "work")
  config = pipeline.get_config("smoke", seed=0)
  lines = []
  with pytest.raises(KeyboardInterrupt):
    pipeline.run_pipeline(config, workdir, train_callbacks=[StopAfterFirstEpoch()],
                          log=lines.append)
  assert os.path.exists(os.path.join(workdir, "search", "arch.txt"))
  assert not os.path.exists(os.path.join(workdir, "train", "final.keras"))
  state = json.load(open(os.path.join(workdir, "pipeline.json")))
  assert state["search"]["status"] == "done" and "train" not in state

  lines = []
  summary = pipeline.run_pipeline(config, workdir, log=lines.append)
  assert "[data] done before: skipped" in lines and "[search] done before: skipped" in lines
  assert "[train] running" in lines
  steps = config.train.steps_per_epoch
  assert any(f"epoch 1, optimizer step {steps}" in l for l in lines)  # resumed there
  metrics = json.load(open(os.path.join(workdir, "train", "metrics.json")))
  assert metrics["resumed_from_step"] == steps
  assert metrics["optimizer_steps"] == config.train.epochs * steps
  assert metrics["epochs_run_this_session"] == config.train.epochs - 1
  for stage in ("evaluate", "export", "pictures"):
    assert f"[{stage}] running" in lines
  # Every stage's outputs, checked against independent counts.
  arch = presets.load(os.path.join(workdir, "search", "arch.txt"))
  assert summary["macs"] == flops.count(arch, 16, 4).macs == metrics["macs"]
  assert summary["search_macs"] == summary["macs"]
  evaluation = json.load(open(os.path.join(workdir, "eval.json")))
  assert summary["top1"] == evaluation["top1"] and evaluation["examples"] == 32
  assert 0 <= summary["top1"] <= 100 and summary["top5"] >= summary["top1"]
  assert os.path.exists(os.path.join(summary["saved_model"], "saved_model.pb"))
  assert [os.path.basename(p) for p in summary["tflite"]] == ["model_float32.tflite",
                                                             "model_int8.tflite"]
  assert summary["tflite_parity"]["model_float32.tflite"]["top1_agreement"] == 1.0
  for png in summary["pictures"].values():
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 10000
  assert set(summary["stage_seconds"]) == set(pipeline.STAGES)

  # The tool on the finished workdir: every stage skipped, the same summary.
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "run_pipeline.py"), "--config=smoke",
       f"--workdir={workdir}", "--seed=0"],
      capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  for stage in pipeline.STAGES:
    assert f"[{stage}] done before: skipped" in proc.stdout
  assert f"test Prec@1 {summary['top1']:.2f}" in proc.stdout
  assert "SavedModel: " in proc.stdout and "model_int8.tflite" in proc.stdout


def test_unknown_config_names_it():
  with pytest.raises(ValueError, match="unknown pipeline config 'cifar100-fast'"):
    pipeline.get_config("cifar100-fast")


def test_a_failing_stage_says_so_and_keeps_the_earlier_stages(tmp_path):
  """Issue 18, point 5: the export stage of a network with NaN logits fails
  with one clear error (it used to segfault in the int8 conversion), says
  which stage failed, and leaves the search, training and evaluation alone."""
  from autonl_tf.export import ExportError
  from autonl_tf.io import write_json
  from test_export import ARCH, nan_model_run
  workdir = tmp_path / "work"
  config = pipeline.get_config("smoke", seed=0)
  (workdir / "search").mkdir(parents=True)
  (workdir / "search" / "arch.txt").write_text(ARCH)
  write_json(str(workdir / "search" / "decisions.json"), {"macs": 1})
  nan_model_run(str(workdir / "train"))
  write_json(str(workdir / "train" / "metrics.json"), {"top1": 25.0})
  write_json(str(workdir / "eval.json"), {"top1": 25.0})
  before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
  lines = []
  with pytest.raises(ExportError, match="NaN or infinite on 20 of 20 parity images"):
    pipeline.run_pipeline(config, str(workdir), log=lines.append)
  assert lines[-2].startswith("[export] failed after ") and "refusing to export TFLite " \
      "float32, int8 (nothing was written)" in lines[-2]
  assert lines[-1] == (f"[export] the earlier stages' outputs in {workdir} are kept: rerun to "
                       "retry from the export stage")
  assert json.load(open(workdir / "pipeline.json"))["export"]["status"] == "failed"
  assert {p: p.read_bytes() for p in before} == before
  assert not list((workdir / "export").glob("*.tflite"))
