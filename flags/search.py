"""Flags of tools/search.py: one per `SearchConfig` field (`flags.from_config`)."""

from absl import flags

from autonl_tf import constants
from autonl_tf.arch import ACTIVATIONS, NL_NORMS
from autonl_tf.search import choices
from autonl_tf.search.config import SearchConfig
from autonl_tf.training.config import OPTIMIZERS
from flags import common
from flags import from_config

FLAGS = flags.FLAGS

#: `SearchConfig` fields with flags of their own: `space` (below: its default
#: depends on --input_size), `data` (`common.define_data_flags`), `precision`
#: and `sync_bn` (`common.define_distribute_flags`).
NOT_DERIVED = ("space", "data", "precision", "sync_bn")
#: Old flag names -> `SearchConfig` field.
ALIASES = {"lambda": "lam", "warmup_epochs": "supernet_warmup_epochs", "lr": "lr_per_256",
           "landing_bn_batches": "bn_recalibration_batches"}
CHOICES = {"activation": ACTIVATIONS, "nl_norm": NL_NORMS, "optimizer": OPTIMIZERS,
           **choices.BY_FIELD}


def define_search_flags():
  common.define_data_flags()
  common.define_distribute_flags(SearchConfig)
  common.define_recipe_flag()
  flags.DEFINE_string("space", None,
                      "Search space: autonl-imagenet (224px), autonl-cifar (the same macro with "
                      "a stride-1 stem, 32px), cifar (32px, autonl-s-cifar's macro), cifar13 "
                      "(32px, shallower) or tiny. Default: cifar up to --input_size=64, "
                      "autonl-imagenet above.")
  flags.DEFINE_integer("input_size", constants.INPUT_SIZE, "Input image height and width.")
  flags.DEFINE_integer("num_classes", constants.NUM_CLASSES, "Classes (synthetic data only; datasets bring theirs).")
  from_config.define(SearchConfig, skip=NOT_DERIVED, choices=CHOICES, aliases=ALIASES,
                     module_name=__name__)


def search_config_from_flags():
  from autonl_tf.search.space import default_space
  return SearchConfig(
      space=FLAGS.space or default_space(FLAGS.input_size),
      data=common.data_config_from_flags(common.synthetic_classes()),
      precision=FLAGS.precision, sync_bn=FLAGS.sync_bn,
      **common.recipe_fields("search", from_config.values(SearchConfig, NOT_DERIVED)))
