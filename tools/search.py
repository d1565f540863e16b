"""The AutoNL search under a MAC or latency budget; writes arch.txt and
decisions.json.

  python tools/search.py --space=cifar --dataset=cifar10 --data_dir=D --input_size=32 \
      --cost=target --target_macs=60e6 --epochs=8 --model_dir=runs/search
  python tools/latency_table.py --space=cifar --input_size=32 --num_classes=10 --out=lut.json
  python tools/search.py --space=cifar --dataset=cifar10 --data_dir=D --input_size=32 \
      --cost=target --cost_model=latency --latency_table=lut.json --target_latency_ms=2.5 \
      --epochs=8 --model_dir=runs/search_latency
  python tools/search.py --space=cifar --dataset=synthetic --input_size=32 --num_classes=10 \
      --epochs=1 --steps_per_epoch=5 --batch_size=8 --model_dir=/tmp/search

Rerun the same command after a kill: the search resumes at the next epoch.
"""

import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from flags import common
from flags import search as search_flags

search_flags.define_search_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  _bootstrap.quiet_logs()
  import keras
  from autonl_tf.search.runner import search

  def job():
    config = search_flags.search_config_from_flags()
    strategy = common.strategy_from_flags()
    if FLAGS.seed is not None:
      keras.utils.set_random_seed(FLAGS.seed)
    search(config, strategy)

  return _bootstrap.run(job)


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
