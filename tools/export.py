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

from autonl_tf.data import decoded_size
from flags import common

common.define_arch_flags(default_arch=None)
common.define_data_flags()
flags.FLAGS.set_default("dataset", None)
flags.DEFINE_string("model", None, "A .keras file or a .weights.h5 checkpoint (with --arch; "
                    "EMA weights are used when it holds them).")
flags.DEFINE_string("export_dir", None, "Base directory; the SavedModel goes to <export_dir>/<version>.")
flags.DEFINE_integer("version", 1, "SavedModel version (TF Serving serves the highest).")
flags.DEFINE_bool("overwrite", False, "Replace an existing <export_dir>/<version>.")
flags.DEFINE_integer("top_k", 5, "Size of the top_k_* outputs.")
flags.DEFINE_integer("max_image_pixels", decoded_size.DEFAULT_MAX_PIXELS,
                     "predict_images refuses, before decoding, an image whose header declares "
                     "more pixels than this (all frames of an animated GIF together).")
flags.DEFINE_string("labels", None, "Class names file, one per line (overrides the dataset's).")
flags.DEFINE_list("tflite", [], "Write TFLite models instead of the SavedModel: any of "
                  "float32, float16, dynamic, int8 (int8 needs --dataset).")
flags.DEFINE_integer("representative_images", 200, "int8: calibration images from --representative_split.")
flags.DEFINE_string("representative_split", "train", "int8: split of the calibration images.")
flags.DEFINE_integer("parity_images", 100, "Held-out images for the TFLite parity report.")
flags.DEFINE_string("parity_split", "test", "Split of the parity images.")
flags.mark_flags_as_required(["model", "export_dir"])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  _bootstrap.quiet_logs()
  from autonl_tf.export import workflow

  def job():
    data = common.data_config_from_flags(common.synthetic_classes()) if FLAGS.dataset else None
    request = workflow.ExportRequest(
        model=FLAGS.model, export_dir=FLAGS.export_dir, version=FLAGS.version,
        overwrite=FLAGS.overwrite, top_k=FLAGS.top_k, max_image_pixels=FLAGS.max_image_pixels,
        labels=FLAGS.labels, tflite=FLAGS.tflite,
        data=data, arch=FLAGS.arch, input_size=FLAGS.input_size, num_classes=FLAGS.num_classes,
        arch_limits=common.arch_limits_from_flags(),
        representative_images=FLAGS.representative_images,
        representative_split=FLAGS.representative_split,
        parity_images=FLAGS.parity_images, parity_split=FLAGS.parity_split)
    workflow.run_export(request, log=print)

  return _bootstrap.run(job)


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
