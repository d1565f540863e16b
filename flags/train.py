"""Flags of tools/train.py: one per `TrainConfig` field (`flags.from_config`),
defaults the paper's ImageNet recipe."""

from absl import flags

from autonl_tf.training import config as train_config
from flags import common
from flags import from_config

FLAGS = flags.FLAGS

#: `TrainConfig` fields with flags of their own elsewhere: `arch` and
#: `arch_limits` (`common.define_arch_flags`), `data` (`common.define_data_flags`),
#: `precision` and `sync_bn` (`common.define_distribute_flags`).
NOT_DERIVED = ("arch", "data", "arch_limits", "precision", "sync_bn")
#: Old flag names -> `TrainConfig` field.
ALIASES = {"lr": "lr_per_256", "warmup_epochs": "lr_warmup_epochs", "dropout": "dropout_rate",
           "drop_connect": "drop_connect_rate", "ema": "ema_momentum"}


def define_train_flags():
  common.define_arch_flags()
  common.define_data_flags()
  common.define_distribute_flags(train_config.TrainConfig)
  common.define_recipe_flag()
  from_config.define(train_config.TrainConfig, skip=NOT_DERIVED, choices=train_config.CHOICES,
                     aliases=ALIASES, module_name=__name__)
  flags.DEFINE_bool("retrain", False, "Train again from epoch 0 into a --model_dir that holds a "
                    "finished (or partial) run, replacing it; without it a finished run is left "
                    "as it is.")


def train_config_from_flags():
  config = train_config.TrainConfig
  fields = common.recipe_fields("train", from_config.values(config, NOT_DERIVED))
  if fields["validation_split"] == "none":
    fields["validation_split"] = None
  return config(
      arch=FLAGS.arch, data=common.data_config_from_flags(common.synthetic_classes()),
      precision=FLAGS.precision, sync_bn=FLAGS.sync_bn,
      arch_limits=common.arch_limits_from_flags(), **fields)
