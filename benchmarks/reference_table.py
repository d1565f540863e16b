"""The CIFAR-10 reference table: this library's CIFAR networks trained to
the end beside the networks every reader knows, accuracy and milliseconds
side by side.

Every network is trained by the CIFAR recipe (`autonl_tf.recipes`, `cifar`)
for --epochs at 32px on the 45,000 training images (5,000 held out of train
for the per-epoch `val_*`, as in the 30-epoch run of the cubic product this
table replaces), training seed --seed, then evaluated on the test split:

  autonl-s-cifar-x0.5   the autonl-s-cifar preset at width 0.5 (24.3M MACs),
                        also at every --spread_seeds seed (its seed spread);
  resnet20              ResNet-20 (He et al. 2016, section 4.2);
  mobilenetv2-cifar-matched  MobileNetV2's blocks in the 32px macro at the
                        width whose MACs are closest to autonl-s-cifar x0.5's;
  mobilenetv2-cifar     the same at width 1.0;
  autonl-s-cifar        the preset at full width;
  autonl-l-cifar        AutoNL-L's CIFAR preset (last: the longest).

The runs go in that order into their own directories under --workdir; a
finished run is skipped, an interrupted one resumes at its last epoch, so
after a kill the same command goes on where it stopped. Each finished run's
small files are kept in --record_dir (a directory in git), from which a lost
workdir is restored. Then, in one sitting (pause other jobs), every trained
network is converted to LiteRT float32 and int8 (calibrated on 200 training
images) and timed at batch 1 with --threads threads, the networks
interleaved over --passes passes (resumable: `latency.json`); int8's top-1
agreement with the Keras model is measured on --agreement_images test
images.

  python benchmarks/reference_table.py --quick          # synthetic, minutes
  nohup python benchmarks/reference_table.py --data_dir=runs/tfds \\
      --workdir=runs/reference --format=markdown >> runs/reference.log 2>&1 &
  python benchmarks/reference_table.py --workdir=runs/reference --report  # standing
"""

import dataclasses
import os
import statistics
import sys
from typing import List, Optional

import _common
import _runs
from absl import app
from absl import flags

from autonl_tf import run_files

flags.DEFINE_string("data_dir", os.environ.get("TFDS_DATA_DIR", "runs/tfds"),
                    "TFDS data directory with a prepared cifar10 (tools/prepare_data.py).")
flags.DEFINE_string("workdir", None, "Where the runs go (default: runs/reference, or a temporary "
                    "directory with --quick).")
flags.DEFINE_list("networks", None, "The table's rows, in order (default: every network of the "
                  "table; with --quick: autonl-s-cifar-x0.5, resnet20, mobilenetv2-cifar-matched).")
flags.DEFINE_integer("epochs", None, "Training epochs (default: 30; 1 with --quick).")
flags.DEFINE_integer("seed", 1, "Training seed of every network.")
flags.DEFINE_list("spread_seeds", ["2"], "Further training seeds of autonl-s-cifar-x0.5: the seed "
                  "spread.")
flags.DEFINE_string("record_dir", None, "Where each finished run's small files are kept and "
                    "restored from (default: docs/records/reference; none with --quick; '' for "
                    "none).")
flags.DEFINE_bool("report", False, "Train and time nothing: the table of the runs finished so far.")
flags.DEFINE_bool("latency", True, "After the trainings, time every trained network (LiteRT "
                  "float32 and int8, batch 1, one sitting).")
flags.DEFINE_integer("passes", None, "Latency passes over all networks (default: 3; 1 with "
                     "--quick); each network's fastest pass is reported.")
flags.DEFINE_integer("agreement_images", None, "Test images of int8's top-1 agreement (default: "
                     "2000; 20 with --quick).")
flags.DEFINE_string("plot", None, "Prefix of the two PNGs, <plot>_ms.png and <plot>_macs.png "
                    "(default: docs/img/reference; <workdir>/reference with --quick).")
FLAGS = flags.FLAGS

INPUT_SIZE, NUM_CLASSES = 32, 10
HAND = "autonl-s-cifar"
WIDTHS = [round(0.25 + 0.05 * i, 2) for i in range(36)]  # 0.25 .. 2.0, the matched width's grid


@dataclasses.dataclass
class Run:
  """One training of the table."""
  name: str        # directory under --workdir
  network: str     # the table's row
  seed: int
  arch: str        # arch file or network name
  search: bool = False


def quick() -> bool:
  return FLAGS.quick


def network_names() -> List[str]:
  default = (["autonl-s-cifar-x0.5", "resnet20", "mobilenetv2-cifar-matched"] if quick() else
             list(NETWORKS))
  names = FLAGS.networks or default
  unknown = [n for n in names if n not in NETWORKS]
  if unknown:
    raise ValueError(f"--networks takes {', '.join(NETWORKS)}, got {', '.join(unknown)}")
  return names


def hand_half_arch(workdir) -> str:
  """autonl-s-cifar at width 0.5, written as `<workdir>/autonl-s-cifar-x0.5.txt`."""
  from autonl_tf import arch as arch_lib
  return _runs.pin_arch_file(os.path.join(workdir, "autonl-s-cifar-x0.5.txt"),
                             arch_lib.scale_width(arch_lib.load(HAND), 0.5),
                             "autonl-s-cifar x0.5 (the preset changed since the table began)")


def matched_mobilenet(workdir) -> str:
  from autonl_tf import arch as arch_lib
  from autonl_tf import flops
  budget = flops.count(arch_lib.load(hand_half_arch(workdir)), INPUT_SIZE, NUM_CLASSES).macs
  return _runs.matched_anchor("mobilenetv2-cifar", budget, os.path.join(workdir, "anchor.json"),
                              INPUT_SIZE, NUM_CLASSES, WIDTHS)


#: row -> its arch (a function of the workdir).
NETWORKS = {
    "autonl-s-cifar-x0.5": hand_half_arch,
    "resnet20": lambda workdir: "resnet20",
    "mobilenetv2-cifar-matched": matched_mobilenet,
    "mobilenetv2-cifar": lambda workdir: "mobilenetv2-cifar",
    "autonl-s-cifar": lambda workdir: HAND,
    "autonl-l-cifar": lambda workdir: "autonl-l-cifar",
}


def plan(workdir) -> List[Run]:
  runs = []
  for network in network_names():
    arch = NETWORKS[network](workdir)
    runs.append(Run(f"{network}-seed{FLAGS.seed}", network, FLAGS.seed, arch))
    if network == "autonl-s-cifar-x0.5":
      runs += [Run(f"{network}-seed{s}", network, int(s), arch) for s in FLAGS.spread_seeds]
  return runs


def data_config(seed):
  return _runs.data_config(seed, quick(), FLAGS.data_dir)


def execute(run: Run, workdir, log, records):
  def work(run_dir, prefix, clock):
    from autonl_tf import recipes
    from autonl_tf.training.trainer import train
    extra = dict(batch_size=8, steps_per_epoch=2, validation_split=None, eval_steps=2,
                 bn_recalibration_batches=1) if quick() else {}
    train(recipes.train_config("cifar", arch=run.arch, data=data_config(run.seed),
                               model_dir=run_dir, epochs=_common.pick(FLAGS.epochs, 1, 30),
                               verbose=0, **extra),
          log=prefix, extra_callbacks=[clock])

  return _runs.execute(run, workdir, work, log, records)


def record_dir() -> Optional[str]:
  return _runs.record_dir(FLAGS.record_dir, quick(), "reference")


# ------------------------------------------------------------- latency --

def time_networks(runs: List[Run], records, workdir, log) -> dict:
  """LiteRT float32 and int8 ms at batch 1 of every trained run, the
  networks interleaved (`latency.time_in_passes`, resumable in
  `<workdir>/latency.json`), and int8's top-1 agreement with Keras. A run
  whose `final.keras` is gone (its workdir lost, the run restored from its
  record) is timed from its architecture with fresh weights (the same
  graph: the same milliseconds) and has no agreement; it is listed in
  `timed_from_arch`."""
  import keras
  from autonl_tf import io
  from autonl_tf import latency
  from autonl_tf.export import tflite
  from autonl_tf.export.workflow import images_from
  from autonl_tf.models import anchors
  path = os.path.join(workdir, "latency.json")
  state = io.read_json(path) if os.path.exists(path) else {}
  state.setdefault("machine", latency.machine())
  entries = state.setdefault("entries", {})
  agreement = state.setdefault("int8_top1_agreement", {})
  from_arch = state.setdefault("timed_from_arch", [])
  trained = [r for r in runs if "top1" in records.get(r.name, {})]
  if not trained:
    return state
  data = data_config(FLAGS.seed)
  calibration = images_from(data, "train", 20 if quick() else 200)
  test = images_from(data, "test", _common.pick(FLAGS.agreement_images, 20, 2000))
  passes = _common.pick(FLAGS.passes, 1, 3)
  flats = {}
  for run in trained:
    keys = [f"{run.name} float32", f"{run.name} int8"]
    if ((run.name in agreement or run.name in from_arch)
        and all(len(entries.get(k, {}).get("passes_ms", ())) >= passes for k in keys)):
      continue  # converted, checked and timed before
    keras.backend.clear_session()
    final = os.path.join(workdir, run.name, run_files.FINAL_MODEL)
    if os.path.exists(final):
      model = keras.saving.load_model(final, compile=False)
    else:
      model = anchors.build(run.arch, (INPUT_SIZE, INPUT_SIZE, 3), NUM_CLASSES)
      if run.name not in from_arch:
        from_arch.append(run.name)
    flats[keys[0]] = tflite.convert(model, "float32")
    flats[keys[1]] = tflite.convert(model, "int8", calibration)
    if run.name not in agreement and run.name not in from_arch:
      report = tflite.parity(model, tflite.TFLiteModel(content=flats[keys[1]]), test, "int8")
      agreement[run.name] = report["top1_agreement"]
    agree = (f"int8 top-1 agreement {agreement[run.name]:.4f}" if run.name in agreement else
             f"timed from its architecture ({final} is gone): no int8 agreement")
    log(f"[{run.name}] converted: float32 {len(flats[keys[0]]) / 1e6:.2f} MB, int8 "
        f"{len(flats[keys[1]]) / 1e6:.2f} MB, {agree}")
    io.write_json(path, state)
  warmup, repeats = _common.warmup_repeats((2, 5), (30, 200))
  threads = FLAGS.threads or 1
  state["settings"] = {"threads": threads, "warmup": warmup, "repeats": repeats, "batch": 1}
  latency.time_in_passes(
      list(flats), entries, lambda key: latency.time_tflite(flats[key], threads, warmup, repeats),
      passes, lambda: io.write_json(path, state),
      lambda done, total, key: log(f"timed {key}: {entries[key]['ms']:.3f} ms ({done}/{total})"))
  return state


# --------------------------------------------------------------- table --

def summarize(runs: List[Run], records, timings, workdir):
  """The table's rows (one per run) and the claim lines."""
  times = {r.name: _runs.run_seconds(os.path.join(workdir, r.name)) for r in runs}
  entries = timings.get("entries", {})
  agreement = timings.get("int8_top1_agreement", {})
  rows, points_ms, points_macs = [], [], []
  for run in runs:
    rec = records.get(run.name)
    if rec is None or "failed" in rec:
      rows.append([run.network, run.seed, "not run yet" if rec is None else rec["failed"]]
                  + ["-"] * 8)
      continue
    fp32, int8 = (entries.get(f"{run.name} {v}", {}).get("ms") for v in ("float32", "int8"))
    agree = agreement.get(run.name)
    rows.append([run.network, run.seed, f"{rec['top1']:.2f}", f"{rec['top5']:.2f}",
                 f"{rec['params'] / 1e6:.2f}M", _common.millions(rec["macs"]),
                 "-" if fp32 is None else f"{fp32:.3f}", "-" if int8 is None else f"{int8:.3f}",
                 "-" if agree is None else f"{100 * agree:.1f}%",
                 f"{rec.get('max_abs_logit', float('nan')):.3g}",
                 f"{times[run.name]['alone'] / 60:.0f}"])
    points_macs.append((run.network, rec["macs"], rec["top1"]))
    if fp32 is not None:
      points_ms.append((run.network, fp32, rec["top1"]))
  return rows, points_ms, points_macs, claims(runs, records)


def claims(runs, records) -> List[str]:
  """autonl-s-cifar against ResNet-20 and MobileNetV2 at equal MACs, against
  the seed spread of autonl-s-cifar x0.5."""
  top1 = {}
  for run in runs:
    if "top1" in records.get(run.name, {}):
      top1.setdefault(run.network, []).append(records[run.name]["top1"])
  half = top1.get("autonl-s-cifar-x0.5", [])
  if len(half) < 2:
    return ["claim: undecided until autonl-s-cifar-x0.5 has two seeds"]
  spread = max(half) - min(half)
  mean = statistics.mean(half)
  lines = [f"autonl-s-cifar-x0.5 seeds: {' / '.join(f'{t:.2f}' for t in half)}, mean {mean:.2f}, "
           f"spread (max - min) {spread:.2f} points"]
  for other, mine, what in (("mobilenetv2-cifar-matched", mean, "autonl-s-cifar-x0.5 (mean)"),
                            ("resnet20", mean, "autonl-s-cifar-x0.5 (mean)"),
                            ("mobilenetv2-cifar", (top1.get(HAND) or [None])[0], HAND)):
    if other in top1 and mine is not None:
      diff = mine - top1[other][0]
      lines.append(f"{what} - {other}: {diff:+.2f} points; more than the seed spread: "
                   f"{'yes' if diff > spread else 'no'}")
  return lines


def main(argv):
  del argv
  _common.setup()
  import tempfile
  from autonl_tf import io
  from autonl_tf import viz

  workdir = FLAGS.workdir or (tempfile.mkdtemp(prefix="reference-") if quick()
                              else os.path.join("runs", "reference"))
  if not (quick() or FLAGS.report) and not _runs.cifar10_readable(data_config(FLAGS.seed)):
    return 2
  os.makedirs(workdir, exist_ok=True)
  log = lambda line: print(line, flush=True)
  kept = record_dir()
  try:
    runs = plan(workdir)
    records = {}
    for run in runs:
      if FLAGS.report:
        record = _runs.finished_record(run, workdir, log, kept)
        if record is not None:
          records[run.name] = record
      else:
        records[run.name] = execute(run, workdir, log, kept)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  path = os.path.join(workdir, "latency.json")
  if FLAGS.latency and not FLAGS.report:
    timings = time_networks(runs, records, workdir, log)
    if kept:
      io.copy_file(path, os.path.join(kept, "latency.json"))
  elif os.path.exists(path):
    timings = io.read_json(path)
  elif kept and os.path.exists(os.path.join(kept, "latency.json")):
    timings = io.read_json(os.path.join(kept, "latency.json"))
  else:
    timings = {}
  rows, points_ms, points_macs, claim_lines = summarize(runs, records, timings, workdir)
  prefix = FLAGS.plot or (os.path.join(workdir, "reference") if quick()
                          else os.path.join("docs", "img", "reference"))
  epochs = _common.pick(FLAGS.epochs, 1, 30)
  plots = [viz.plot_accuracy_vs_macs(points_macs, f"{prefix}_macs.png",
                                     f"CIFAR-10, 32px: test top-1 vs MACs ({epochs} epochs)")]
  if points_ms:
    plots.append(viz.plot_accuracy_vs_macs(
        points_ms, f"{prefix}_ms.png", f"CIFAR-10, 32px: test top-1 vs LiteRT float32 ms at "
        f"batch 1, {timings['settings']['threads']} thread(s) ({epochs} epochs)",
        xlabel="LiteRT float32 ms (batch 1)", xscale=1.0))
  io.write_json(os.path.join(workdir, "reference.json"),
                {"runs": records, "latency": timings, "claims": claim_lines}, sort_keys=False)

  _common.header("CIFAR-10 reference table: trained to the end, accuracy and milliseconds")
  dataset = next((r["dataset"] for r in records.values() if "dataset" in r), "cifar10")
  _common.title(f"{dataset} at 32px, {epochs} epochs of the CIFAR recipe, 45k train / 5k held out; "
                "test split; LiteRT at batch 1" + (f", {timings['settings']['threads']} thread(s)"
                                                   if timings.get("settings") else ""))
  _common.table(["network", "seed", "top-1", "top-5", "params", "MACs", "fp32 ms", "int8 ms",
                 "int8 top-1 agreement", "max |logit|", "train min"], rows)
  for line in claim_lines:
    _common.note(line)
  _common.note("ms: the fastest of the passes' fastest invokes (`latency.time_tflite`); train "
               "min: epochs x the run's fastest epoch (the machine to itself)")
  if timings.get("timed_from_arch"):
    _common.note(f"timed from the architecture (the trained model gone with its workdir, the run "
                 f"rebuilt from its record), no int8 agreement: "
                 f"{', '.join(timings['timed_from_arch'])}")
  _common.note(f"plots: {', '.join(plots)}; runs in {workdir}"
               + (f"; finished runs' records in {kept}" if kept else ""))
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
