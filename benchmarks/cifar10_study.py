"""The CIFAR-10 study: does LightNL, and does the search, pay at one MAC budget?

At 32px, with the same training recipe, epochs and seeds:

  (a) baseline  AutoNL-S's MBConv backbone with every LightNL removed;
  (b) lightnl   the same network with LightNL where AutoNL-S has them;
  (c) searched  the architecture `search.runner.search` (what tools/search.py
                runs) finds in the `autonl-cifar` space (AutoNL-S's macro)
                with `--cost=target` at the MACs of (b); it must land within
                5% of them.

All three use a stride-1 stem (32px inputs; the four stride-2 blocks leave
2x2 maps at the head). Every run writes into its own directory under
--workdir and is skipped when its `metrics.json` exists, so a killed study
resumes at the run it stopped in (and a killed run at its last epoch).
The table gives the test top-1 per seed, mean and spread, MACs, params and
the wall time of training (and of the search for (c)); `study.json` holds
the same.

  python benchmarks/cifar10_study.py --quick                   # synthetic data, tiny schedule
  python benchmarks/cifar10_study.py --data_dir=/work/tfds --workdir=runs/cifar10_study \
      --seeds=1,2 --epochs=3 --format=markdown
"""

import dataclasses
import os
import statistics
import sys
import time

import _common
from absl import app
from absl import flags

from autonl_tf import io

VARIANTS = ("baseline", "lightnl", "searched")
BUDGET_TOLERANCE = 0.05

flags.DEFINE_string("data_dir", os.environ.get("TFDS_DATA_DIR", "/work/tfds"),
                    "TFDS data directory with a prepared cifar10 (tools/prepare_data.py).")
flags.DEFINE_string("workdir", None, "Where the runs go (default: runs/cifar10_study, "
                    "or a temporary directory with --quick).")
flags.DEFINE_list("seeds", None, "Training seeds (default: 1,2; 1 with --quick).")
flags.DEFINE_integer("epochs", None, "Training epochs of every run (default: 3; 1 with --quick).")
flags.DEFINE_integer("steps_per_epoch", None, "Training steps per epoch (default: one pass over "
                     "the 50k train images; 3 with --quick).")
flags.DEFINE_integer("batch_size", None, "Training batch size (default: 128; 8 with --quick).")
flags.DEFINE_float("lr", 0.032, "Peak learning rate per 256 images (cosine schedule).")
flags.DEFINE_integer("search_epochs", None, "Search epochs, warm-up included (default: 5; 2 with "
                     "--quick).")
flags.DEFINE_integer("search_steps", None, "Search steps per epoch (default: 100; 3 with --quick).")
flags.DEFINE_integer("search_batch_size", None, "Search batch size (default: 64; 8 with --quick).")
flags.DEFINE_integer("search_seed", 1, "Seed of the search.")
FLAGS = flags.FLAGS


def study_archs():
  """(baseline, lightnl): AutoNL-S with a stride-1 stem, without and with
  its LightNL blocks."""
  from autonl_tf import arch as arch_lib
  autonl_s = arch_lib.load("autonl-s")
  lightnl = dataclasses.replace(autonl_s, stem_stride=1)
  baseline = dataclasses.replace(lightnl, blocks=tuple(
      dataclasses.replace(b, nl_ratio=0.0, nl_stride=1) for b in lightnl.blocks))
  return baseline, lightnl


def data_config(seed):
  from autonl_tf.data import DataConfig
  if FLAGS.quick:
    return DataConfig("synthetic", image_size=32, num_classes=10, seed=seed)
  return DataConfig("cifar10", data_dir=FLAGS.data_dir, image_size=32, seed=seed)


def once(done, seed, run):
  """Runs `run()` from a fresh Keras state seeded with `seed` unless the
  file `done` exists; returns that file's JSON (earlier runs are skipped)."""
  if not os.path.exists(done):
    import keras
    keras.backend.clear_session()  # each run starts from a fresh graph state
    keras.utils.set_random_seed(seed)
    run()
  return io.read_json(done)


def run_search(workdir, budget, log):
  """The search of (c), or its earlier result."""
  from autonl_tf.search.runner import SearchConfig, search
  model_dir = os.path.join(workdir, "search")
  return once(os.path.join(model_dir, "decisions.json"), FLAGS.search_seed, lambda: search(
      SearchConfig(
          space="autonl-cifar", data=data_config(FLAGS.search_seed), model_dir=model_dir,
          epochs=_common.pick(FLAGS.search_epochs, 2, 5), warmup_epochs=1,
          steps_per_epoch=_common.pick(FLAGS.search_steps, 3, 100),
          batch_size=_common.pick(FLAGS.search_batch_size, 8, 64), cost="target",
          target_macs=float(budget), verbose=0 if FLAGS.quick else 2),
      log=lambda line: log(f"[search] {line}")))


def batch_size():
  return _common.pick(FLAGS.batch_size, 8, 128)


def run_training(arch_path, model_dir, seed, log):
  """One training run of the shared recipe, or its earlier metrics."""
  from autonl_tf.training.trainer import TrainConfig, train
  return once(os.path.join(model_dir, "metrics.json"), seed, lambda: train(
      TrainConfig(
          arch=arch_path, data=data_config(seed), model_dir=model_dir,
          batch_size=batch_size(), epochs=_common.pick(FLAGS.epochs, 1, 3),
          steps_per_epoch=_common.pick(FLAGS.steps_per_epoch, 3, None), lr_per_256=FLAGS.lr,
          lr_schedule="cosine", warmup_epochs=0.5, ema_momentum=0.99, drop_connect_rate=0.1,
          validation_split=None, eval_steps=2 if FLAGS.quick else None,
          bn_recalibration_batches=2 if FLAGS.quick else 50, verbose=0 if FLAGS.quick else 2),
      log=lambda line: log(f"[{os.path.basename(model_dir)}] {line}")))


def summarize(runs, search_info, budget):
  """Table rows and the study.json record."""
  rows, record = [], {"budget_macs": budget, "search": search_info, "variants": {}}
  for variant in VARIANTS:
    metrics = runs[variant]
    top1 = [m["top1"] for m in metrics]
    mean = statistics.mean(top1)
    spread = statistics.stdev(top1) if len(top1) > 1 else 0.0
    train_s = statistics.mean(m["train_time_s"] for m in metrics)
    m0 = metrics[0]
    search_s = search_info.get("search_time_s") if variant == "searched" else None
    rows.append([variant, " / ".join(f"{t:.2f}" for t in top1), f"{mean:.2f} +- {spread:.2f}",
                 f"{statistics.mean(m['top5'] for m in metrics):.2f}",
                 _common.millions(m0["macs"]), f"{m0['params'] / 1e6:.2f}M",
                 f"{train_s:.0f}", "-" if search_s is None else f"{search_s:.0f}"])
    record["variants"][variant] = {
        "top1": top1, "top1_mean": mean, "top1_std": spread, "macs": m0["macs"],
        "params": m0["params"], "train_time_s": [m["train_time_s"] for m in metrics],
        "optimizer_steps": m0["optimizer_steps"], "arch": m0["arch_text"]}
  return rows, record


def main(argv):
  del argv
  _common.setup()
  from autonl_tf import arch as arch_lib
  from autonl_tf import flops
  import tempfile

  workdir = FLAGS.workdir or (tempfile.mkdtemp(prefix="cifar10_study-") if FLAGS.quick
                              else "runs/cifar10_study")
  seeds = [int(s) for s in (FLAGS.seeds or (["1"] if FLAGS.quick else ["1", "2"]))]
  if not FLAGS.quick:
    from autonl_tf.data import dataset_info
    try:
      dataset_info(data_config(seeds[0]))
    except Exception as e:  # noqa: BLE001 - reported with the command that fixes it
      print(f"error: cifar10 is not readable in {FLAGS.data_dir} ({e}); run "
            f"`python tools/prepare_data.py --dataset=cifar10 --data_dir={FLAGS.data_dir}`",
            file=sys.stderr)
      return 2
  os.makedirs(workdir, exist_ok=True)
  start = time.time()
  log = lambda line: print(line, flush=True)

  baseline, lightnl = study_archs()
  paths = {v: os.path.join(workdir, f"{v}.txt") for v in VARIANTS}
  for variant, arch in (("baseline", baseline), ("lightnl", lightnl)):
    io.write_text(paths[variant], arch_lib.format_arch(arch))
  budget = flops.count(lightnl, 32, 10).macs
  search_info = run_search(workdir, budget, log)
  io.write_text(paths["searched"], "\n".join(search_info["arch"]) + "\n")
  off = search_info["macs"] / budget - 1
  if abs(off) > BUDGET_TOLERANCE and not FLAGS.quick:  # a few quick steps cannot land
    print(f"error: the search landed at {search_info['macs'] / 1e6:.2f}M MACs, {100 * off:+.1f}% "
          f"off the budget {budget / 1e6:.2f}M (more than {100 * BUDGET_TOLERANCE:.0f}%): search "
          f"longer (--search_epochs) or delete {workdir}/search and change --search_seed",
          file=sys.stderr)
    return 1

  runs = {v: [run_training(paths[v], os.path.join(workdir, f"{v}_seed{s}"), s, log)
              for s in seeds] for v in VARIANTS}
  rows, record = summarize(runs, search_info, budget)
  record.update(seeds=seeds, workdir=workdir, wall_time_s=round(time.time() - start, 1))
  io.write_json(os.path.join(workdir, "study.json"), record, sort_keys=False)

  m = runs["baseline"][0]
  _common.header("CIFAR-10 study: MBConv baseline vs + LightNL vs searched, one MAC budget")
  _common.title(f"{m['dataset']} at 32px, budget {budget / 1e6:.2f}M MACs, seeds "
                f"{', '.join(map(str, seeds))}; {m['epochs']} epochs x {m['steps_per_epoch']} "
                f"steps of {batch_size()} images; test split ({m['eval_examples']} images)")
  _common.table(["variant", "top-1 per seed", "top-1 mean +- std", "top-5 mean", "MACs", "params",
                 "train s", "search s"], rows)
  _common.note(f"searched: {search_info['macs'] / 1e6:.2f}M MACs, {100 * off:+.1f}% of the budget, "
               f"{search_info['epochs']} search epochs x {search_info['steps_per_epoch']} steps. "
               f"Runs and study.json in {workdir}.")
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
