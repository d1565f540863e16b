"""Classifies image files with an exported model (a SavedModel directory
from tools/export.py, or a .tflite file): top-k classes with names and
scores, one line per image.

  python tools/predict.py --model=E/1 cat.jpg dog.png
  python tools/predict.py --model=E/model_int8.tflite --format=json images/*.jpg
"""

import json
import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from autonl_tf.data import decoded_size

flags.DEFINE_string("model", None, "A SavedModel directory (E/<version>) or a .tflite file.")
flags.DEFINE_integer("top_k", 5, "Classes to print per image.")
flags.DEFINE_string("labels", None, "Class names file (default: the SavedModel's asset, or "
                    "labels.txt beside the .tflite file).")
flags.DEFINE_enum("format", "text", ["text", "json"], "Output format.")
flags.DEFINE_integer("max_image_pixels", decoded_size.DEFAULT_MAX_PIXELS,
                     "A .tflite model refuses, before decoding, an image whose header declares "
                     "more pixels than this (a SavedModel applies the limit it was exported with).")
flags.mark_flag_as_required("model")
FLAGS = flags.FLAGS


def main(argv):
  files = argv[1:]
  _bootstrap.quiet_logs()
  from autonl_tf.export.classify import Classifier
  if not files:
    print("error: no image files given (usage: predict.py --model=M image...)", file=sys.stderr)
    return 2
  try:
    classifier = Classifier(FLAGS.model, FLAGS.top_k, FLAGS.labels, FLAGS.max_image_pixels)
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  results = classifier(files)
  if FLAGS.format == "json":
    print(json.dumps([r.as_dict() for r in results], indent=2))
  else:
    for r in results:
      print(r.format())
  return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
