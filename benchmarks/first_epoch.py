"""Do the networks learn from their first steps? One short first epoch of the
CIFAR recipe for AutoNL-S-style networks with and without LightNL and for the
`cifar` supernet, on CIFAR-10 and Fashion-MNIST: train cross-entropy over the
epoch and validation cross-entropy after it, against chance (ln 10).

Each run writes into `--workdir/<dataset>/<network>` and is skipped when it
finished before (rerun the command after a kill).

  python benchmarks/first_epoch.py --data_dir=runs/tfds --workdir=runs/first_epoch
  python benchmarks/first_epoch.py --quick --workdir=/tmp/first_epoch   # synthetic data
"""

import csv
import math
import os
import sys
import time

import _common as C
from absl import app
from absl import flags

from autonl_tf import run_files

flags.DEFINE_string("data_dir", None, "TFDS data directory with cifar10 and fashion_mnist.")
flags.DEFINE_string("workdir", "runs/first_epoch", "Where each run writes.")
flags.DEFINE_integer("steps", 200, "Steps of the first epoch (the recipe's warm-up spans it).")
flags.DEFINE_integer("validation_steps", 20, "Validation batches after the epoch.")
flags.DEFINE_list("datasets", ["cifar10", "fashion_mnist"], "Datasets.")
flags.DEFINE_integer("seed", 1, "Seed.")
FLAGS = flags.FLAGS

NETWORKS = ("autonl-s-cifar", "autonl-s-cifar without LightNL", "cifar supernet")


def _without_lightnl(path):
  from autonl_tf import arch as arch_lib
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write(arch_lib.format_arch(arch_lib.without_lightnl(arch_lib.load("autonl-s-cifar"))))
  return path


def _last_row(path):
  with open(path) as f:
    return list(csv.DictReader(f))[-1]


def run_network(name, data, model_dir, steps, batch):
  from autonl_tf import recipes
  from autonl_tf.training.trainer import train
  arch = (name if "without" not in name
          else _without_lightnl(os.path.join(model_dir, run_files.ARCH)))
  start = time.time()
  train(recipes.train_config("cifar", arch=arch, data=data, model_dir=model_dir, epochs=1,
                             steps_per_epoch=steps, batch_size=batch,
                             validation_steps=FLAGS.validation_steps,
                             eval_steps=FLAGS.validation_steps, bn_recalibration_batches=0,
                             verbose=0), log=None)
  row = _last_row(os.path.join(model_dir, run_files.LOG))
  return (float(row["ce"]), float(row["accuracy"]), float(row["val_ce"]),
          float(row["val_accuracy"]), time.time() - start)


def run_supernet(data, model_dir, steps, batch):
  from autonl_tf.search.runner import search
  from autonl_tf import recipes
  start = time.time()
  if not os.path.exists(os.path.join(model_dir, run_files.ARCH)):
    search(recipes.search_config("cifar", space="cifar", data=data, model_dir=model_dir,
                                 epochs=1, supernet_warmup_epochs=1, steps_per_epoch=steps,
                                 batch_size=batch, verbose=0), log=None)
  row = _last_row(os.path.join(model_dir, run_files.SEARCH_LOG))
  return float(row["ce"]), float(row["accuracy"]), float("nan"), float("nan"), time.time() - start


def main(argv):
  del argv
  C.setup(FLAGS.seed)
  from autonl_tf.data import DataConfig
  C.header("first epoch of the CIFAR recipe")
  datasets = ["synthetic"] if FLAGS.quick else FLAGS.datasets
  steps = C.pick(None, 3, FLAGS.steps)
  batch = C.pick(None, 8, 128)
  rows = []
  for ds in datasets:
    data = DataConfig(ds, data_dir=FLAGS.data_dir, input_size=32, seed=FLAGS.seed,
                      num_classes=10 if ds == "synthetic" else None)
    for name in NETWORKS:
      model_dir = os.path.join(FLAGS.workdir, ds, name.replace(" ", "_"))
      if name.endswith("supernet"):
        result = run_supernet(data, model_dir, steps, batch // 2)
      else:
        result = run_network(name, data, model_dir, steps, batch)
      ce, acc, val_ce, val_acc, seconds = result
      rows.append([ds, name, f"{ce:.3f}", f"{100 * acc:.1f}",
                   "-" if math.isnan(val_ce) else f"{val_ce:.3f}",
                   "-" if math.isnan(val_acc) else f"{100 * val_acc:.1f}",
                   "yes" if ce < math.log(10) else "NO", f"{seconds:.0f}"])
      print(" | ".join(rows[-1]), flush=True)
  C.title(f"{steps} steps of batch {batch} (supernet: {batch // 2}), CIFAR recipe, seed "
          f"{FLAGS.seed}; chance = ln 10 = {math.log(10):.3f}")
  C.table(["dataset", "network", "train CE", "train acc %", "val CE", "val acc %",
           "CE below chance", "s"], rows)


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
