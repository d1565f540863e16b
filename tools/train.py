"""Trains a network from an arch with the paper's recipe; resumable.

  python tools/train.py --arch=autonl-s --dataset=cifar10 --data_dir=DIR --input_size=32 \
      --batch_size=128 --epochs=30 --model_dir=runs/cifar_s
  python tools/train.py --arch=autonl-s --dataset=synthetic --input_size=32 --num_classes=10 \
      --epochs=1 --steps_per_epoch=3 --batch_size=8 --model_dir=/tmp/smoke

Rerun the same command after a kill: training resumes at the next epoch. Rerun
after it finished: it says so and leaves the run alone (--retrain trains again).
"""

import os
import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from autonl_tf import run_files
from flags import common
from flags import train as train_flags

train_flags.define_train_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  _bootstrap.quiet_logs()
  import keras
  from autonl_tf.training import train

  def job():
    config = train_flags.train_config_from_flags()
    strategy = common.strategy_from_flags()
    if FLAGS.seed is not None:
      keras.utils.set_random_seed(FLAGS.seed)
    metrics = train(config, strategy, retrain=FLAGS.retrain)
    print(f"final: top1={metrics['top1']:.2f} top5={metrics['top5']:.2f} "
          f"MACs={metrics['macs'] / 1e6:.1f}M params={metrics['params'] / 1e6:.2f}M "
          f"steps={metrics['optimizer_steps']} -> "
          f"{os.path.join(config.model_dir, run_files.FINAL_MODEL)}, {run_files.METRICS}")

  return _bootstrap.run(job)


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
