"""Search -> derive -> train from scratch -> evaluate -> export -> pictures,
in one resumable run. Rerun the same command after a kill: finished stages
are skipped and the search / training resume at their last epoch.

  python tools/run_pipeline.py --config=cifar10-quick --workdir=runs/quick
  python tools/run_pipeline.py --config=smoke --workdir=/tmp/smoke
  python tools/run_pipeline.py --config=imagenet-paper --workdir=gs://... --data_dir=... \
      --strategy=tpu --tpu=local --precision=mixed_bfloat16

Configs: smoke (synthetic, every stage in a couple of minutes), cifar10-quick
(the README's main job: prepares CIFAR-10 offline when needed), imagenet-paper
(the paper's settings, for real hardware).
"""

import os
import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from autonl_tf import recipes
from autonl_tf.training.config import TrainConfig
from flags import common

flags.DEFINE_enum("config", "cifar10-quick", ["smoke", "cifar10-quick", "imagenet-paper"],
                  "Pipeline recipe.")
flags.DEFINE_string("workdir", None, "Where every stage writes its outputs.")
flags.DEFINE_string("data_dir", os.environ.get("TFDS_DATA_DIR"),
                    "TFDS data directory (default: $TFDS_DATA_DIR, else <workdir>/tfds).")
flags.DEFINE_integer("seed", 1, "Seed of initialisation, shuffling and augmentation.")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the search and train steps.")
flags.DEFINE_enum("recipe", None, list(recipes.RECIPES),
                  "Optimizer recipe of the search and the training (default: the config's own: "
                  "cifar for cifar10-quick, imagenet for imagenet-paper).")
common.define_distribute_flags(TrainConfig)
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  _bootstrap.quiet_logs()
  import keras
  from autonl_tf import pipeline

  def job():
    strategy = common.strategy_from_flags()
    keras.utils.set_random_seed(FLAGS.seed)
    data_dir = FLAGS.data_dir or os.path.join(FLAGS.workdir, "tfds")
    config = pipeline.get_config(FLAGS.config, data_dir=data_dir, seed=FLAGS.seed,
                                 recipe=FLAGS.recipe, precision=FLAGS.precision, sync_bn=FLAGS.sync_bn,
                                 jit_compile=FLAGS.jit_compile)
    print(f"pipeline {config.name}: {config.description}")
    pipeline.run_pipeline(config, FLAGS.workdir, strategy)

  return _bootstrap.run(job)


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
