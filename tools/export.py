"""Exports a trained network for serving: a SavedModel for TF Serving
(`<export_dir>/<version>/`) or TFLite files for phones.

  python tools/export.py --model=DIR/final.keras --export_dir=E --version=1
  python tools/export.py --model=DIR/final.keras --export_dir=E --tflite=float32,float16,dynamic
  python tools/export.py --model=DIR/final.keras --export_dir=E --tflite=int8 \
      --dataset=cifar10 --data_dir=D
  python tools/export.py --model=DIR/checkpoints/epoch_010.weights.h5 --arch=autonl-s ...

Class names come from --labels, else --dataset, else the dataset named in the
training run's config.json beside the model.
"""

import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from flags import export as export_flags

export_flags.define_export_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  _bootstrap.quiet_logs()
  from autonl_tf.export import workflow

  def job():
    request = export_flags.export_request_from_flags()
    workflow.run_export(request, log=print)

  return _bootstrap.run(job)


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
