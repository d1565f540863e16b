"""Flags of tools/train.py; defaults are the paper's ImageNet recipe."""

from absl import flags

from flags import common

FLAGS = flags.FLAGS


def define_train_flags():
  common.define_arch_flags()
  common.define_data_flags()
  common.define_distribute_flags()
  common.define_recipe_flag()
  flags.DEFINE_string("model_dir", None, "Output directory (checkpoints, logs, final.keras).")
  flags.DEFINE_integer("batch_size", 256, "Global batch size.")
  flags.DEFINE_integer("epochs", 350, "Training epochs.")
  flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (default: one pass over train).")
  flags.DEFINE_enum("optimizer", "rmsprop", ["rmsprop", "sgd", "adam"],
                    "rmsprop (TF1-style, the paper's) or sgd (with momentum).")
  flags.DEFINE_bool("nesterov", False, "Nesterov momentum (sgd).")
  flags.DEFINE_float("lr", 0.016, "Peak learning rate per 256 images (scaled by batch/256).")
  flags.DEFINE_enum("lr_schedule", "exponential", ["exponential", "cosine"], "Decay after warm-up.")
  flags.DEFINE_float("warmup_epochs", 5.0, "Linear learning-rate warm-up.")
  flags.DEFINE_float("lr_decay_rate", 0.97, "Exponential decay factor.")
  flags.DEFINE_float("lr_decay_epochs", 2.4, "Epochs between exponential decays.")
  flags.DEFINE_float("rmsprop_rho", 0.9, "RMSProp decay.")
  flags.DEFINE_float("momentum", 0.9, "Momentum of RMSProp or SGD.")
  flags.DEFINE_float("epsilon", 1e-3, "RMSProp epsilon.")
  flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing.")
  flags.DEFINE_float("weight_decay", 1e-5, "L2 weight decay on conv/dense kernels (not BN, biases).")
  flags.DEFINE_float("dropout", 0.2, "Dropout before the classifier.")
  flags.DEFINE_float("drop_connect", 0.2, "Drop-connect (stochastic depth) rate of the last block.")
  flags.DEFINE_float("ema", 0.9999, "Weight EMA momentum (0: off); EMA weights are evaluated.")
  flags.DEFINE_float("bn_momentum", 0.99, "Batch-norm momentum.")
  flags.DEFINE_string("eval_split", "test", "Split of the final evaluation.")
  flags.DEFINE_string("validation_split", "validation", "Split checked after each epoch ('none': skip).")
  flags.DEFINE_integer("validation_steps", None, "Batches of the per-epoch validation.")
  flags.DEFINE_integer("eval_steps", None, "Batches of the final evaluation.")
  flags.DEFINE_integer("bn_recalibration_batches", 100,
                       "Re-estimate BN statistics of the final weights over this many training "
                       "batches before the final evaluation (0: off).")
  flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step.")
  flags.DEFINE_integer("verbose", 2, "Keras progress output: 0 silent, 1 bar, 2 line per epoch.")
  flags.DEFINE_bool("retrain", False, "Train again from epoch 0 into a --model_dir that holds a "
                    "finished (or partial) run, replacing it; without it a finished run is left "
                    "as it is.")
  flags.mark_flag_as_required("model_dir")


# flag -> TrainConfig field, for the flags a recipe sets.
_RECIPE_FLAGS = {
    "optimizer": "optimizer", "nesterov": "nesterov", "batch_size": "batch_size",
    "lr": "lr_per_256", "lr_schedule": "lr_schedule", "warmup_epochs": "warmup_epochs",
    "momentum": "momentum", "weight_decay": "weight_decay",
    "label_smoothing": "label_smoothing", "dropout": "dropout_rate",
    "drop_connect": "drop_connect_rate", "ema": "ema_momentum", "bn_momentum": "bn_momentum",
}


def train_config_from_flags():
  from autonl_tf.training import TrainConfig
  return TrainConfig(
      arch=FLAGS.arch, data=common.data_config_from_flags(common.synthetic_classes()),
      model_dir=FLAGS.model_dir, epochs=FLAGS.epochs,
      steps_per_epoch=FLAGS.steps_per_epoch,
      lr_decay_rate=FLAGS.lr_decay_rate,
      lr_decay_epochs=FLAGS.lr_decay_epochs, rmsprop_rho=FLAGS.rmsprop_rho,
      epsilon=FLAGS.epsilon, eval_split=FLAGS.eval_split,
      validation_split=None if FLAGS.validation_split == "none" else FLAGS.validation_split,
      validation_steps=FLAGS.validation_steps, eval_steps=FLAGS.eval_steps,
      bn_recalibration_batches=FLAGS.bn_recalibration_batches,
      jit_compile=FLAGS.jit_compile, precision=FLAGS.precision, sync_bn=FLAGS.sync_bn,
      verbose=FLAGS.verbose, arch_limits=common.arch_limits_from_flags(),
      **common.recipe_fields("train", _RECIPE_FLAGS))
