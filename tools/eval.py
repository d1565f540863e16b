"""Evaluates a model the paper's way (centre crop, bicubic, mean/std) and
prints the running and final Prec@1 / Prec@5.

  python tools/eval.py --model=DIR/final.keras --dataset=cifar10 --data_dir=D --input_size=32
  python tools/eval.py --model=DIR/checkpoints/epoch_010.weights.h5 --arch=autonl-s ...
  python tools/eval.py --model=EXPORT/1 --dataset=imagenet2012 --eval_split=test
"""

import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from flags import common

common.define_arch_flags(default_arch=None)
common.define_data_flags()
flags.DEFINE_string("model", None, "A .keras file, a .weights.h5 checkpoint (with --arch) "
                    "or a SavedModel directory.")
flags.DEFINE_string("eval_split", "test", "train, validation or test (alias --split).")
flags.DEFINE_integer("batch_size", 100, "Evaluation batch size.")
flags.DEFINE_integer("eval_steps", None, "Evaluate only this many batches (alias --steps).")
flags.DEFINE_integer("bn_recalibration_batches", 0,
                     "Re-estimate BN statistics over this many training batches first.")
flags.DEFINE_integer("log_every", 20, "Print a running line every this many batches.")
flags.DEFINE_alias("split", "eval_split")
flags.DEFINE_alias("steps", "eval_steps")
flags.mark_flag_as_required("model")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  _bootstrap.quiet_logs()
  from autonl_tf.data import dataset_info, make_dataset
  from autonl_tf.export import loading
  from autonl_tf.training import evaluation

  def job():
    data = common.data_config_from_flags(common.synthetic_classes())
    info = dataset_info(data)
    predict, raw_pixels, what = loading.load_for_inference(
        FLAGS.model, FLAGS.arch, FLAGS.input_size, info.num_classes,
        common.arch_limits_from_flags())
    if FLAGS.bn_recalibration_batches:
      model = getattr(predict, "model", None)
      if model is None:
        raise ValueError("BN re-calibration needs a .keras file or a checkpoint, not a SavedModel")
      train_ds = make_dataset(data, "train", FLAGS.batch_size, training=True)
      n = evaluation.recalibrate_batch_norm(model, train_ds, FLAGS.bn_recalibration_batches)
      print(f"re-calibrated BN statistics over {n} training batches")
    ds = make_dataset(data, FLAGS.eval_split, FLAGS.batch_size, training=False,
                      normalize=not raw_pixels)
    total = evaluation.examples_seen(info.split_sizes[FLAGS.eval_split], FLAGS.eval_steps,
                                     FLAGS.batch_size)
    print(f"evaluating {what} on {data.dataset} {FLAGS.eval_split} ({total} images)")
    evaluation.evaluate(predict, ds, FLAGS.eval_steps, total, log=print, log_every=FLAGS.log_every)

  return _bootstrap.run(job)

if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
