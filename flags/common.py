"""Flags shared by several tools, and their conversion to library configs."""

import dataclasses
import os

from absl import flags

from autonl_tf import constants
from flags import from_config

FLAGS = flags.FLAGS


def define_arch_flags(default_arch="autonl-s", default_size=constants.INPUT_SIZE,
                      default_classes=constants.NUM_CLASSES):
  flags.DEFINE_string("arch", default_arch,
                      "Architecture: a preset (autonl-s, autonl-l, autonl-s-cifar, autonl-l-cifar, "
                      "mobilenet-v2), an arch file path, or (tools/train.py) a keras.applications "
                      "anchor keras:mobilenet_v2:<alpha>.")
  flags.DEFINE_integer("input_size", default_size, "Input image height and width.")
  flags.DEFINE_integer("num_classes", default_classes,
                       "Number of classes (taken from the dataset when it has them).")
  from autonl_tf.arch.codec import ArchLimits
  defaults = ", ".join(f"{f.name}={f.default:g}" for f in dataclasses.fields(ArchLimits))
  flags.DEFINE_list("arch_limits", [], "Raise the architecture limits (name=value pairs; "
                    f"defaults {defaults}): channels, blocks, kernel size, expand ratio, "
                    "parameters, MACs per image at --input_size.")


def arch_limits_from_flags():
  from autonl_tf.arch.codec import ArchLimits
  return ArchLimits.parse(FLAGS.arch_limits)


#: `DataConfig` fields that are not derived flags: `dataset` and `data_dir`
#: (below: other defaults), `input_size` and `num_classes` (shared with the
#: arch: `define_arch_flags`, `flags.search`), `shuffle_buffer` and `cache`
#: (not settings of the tools).
DATA_NOT_DERIVED = ("dataset", "data_dir", "input_size", "num_classes", "shuffle_buffer", "cache")


def define_data_flags():
  from autonl_tf.data.config import DataConfig
  flags.DEFINE_string("dataset", "imagenet2012",
                      "TFDS name (imagenet2012, cifar10, fashion_mnist, imagenette, ...), "
                      "folder:PATH (PATH/<split>/<class>/<image>) or synthetic.")
  flags.DEFINE_string("data_dir", os.environ.get("TFDS_DATA_DIR"), "TFDS data directory.")
  from_config.define(DataConfig, skip=DATA_NOT_DERIVED, module_name=__name__)


def data_config_from_flags(num_classes=None):
  from autonl_tf.data.config import DataConfig
  return DataConfig(
      dataset=FLAGS.dataset,
      data_dir=os.path.expanduser(FLAGS.data_dir) if FLAGS.data_dir else None,
      input_size=FLAGS.input_size, num_classes=num_classes,
      **from_config.values(DataConfig, DATA_NOT_DERIVED))


def synthetic_classes():
  """num_classes only matters for synthetic data; real datasets bring theirs."""
  return FLAGS.num_classes if FLAGS.dataset == "synthetic" else None


#: The config fields `define_distribute_flags` makes flags of.
DISTRIBUTE_FIELDS = ("precision", "sync_bn")


def define_distribute_flags(config_cls):
  """--strategy and its devices, and `config_cls`'s (`TrainConfig` or
  `SearchConfig`) `precision` and `sync_bn` as flags."""
  flags.DEFINE_enum("strategy", "default", list(constants.STRATEGIES),
                    "tf.distribute strategy: mirrored = all local GPUs (or --cpu_devices logical "
                    "CPUs); multi_worker = MultiWorkerMirroredStrategy, cluster from TF_CONFIG; "
                    "tpu = TPUStrategy on --tpu.")
  flags.DEFINE_string("tpu", None, "TPU name or grpc:// address ('' or 'local' on a TPU VM).")
  flags.DEFINE_integer("num_gpus", None, "mirrored: use only the first N GPUs.")
  flags.DEFINE_integer("cpu_devices", None, "Split the CPU into N logical devices (to exercise "
                       "mirrored on a machine without GPUs).")
  from_config.define(config_cls, skip=[f.name for f in dataclasses.fields(config_cls)
                                       if f.name not in DISTRIBUTE_FIELDS],
                     choices={"precision": constants.PRECISIONS}, module_name=__name__)


def strategy_from_flags():
  """The strategy the flags name (call before any TensorFlow op runs). For
  `multi_worker` this is where the tools apply the Keras workaround it needs
  (`autonl_tf.compat.apply()`, once per process)."""
  from autonl_tf import compat, distribute
  strategy = distribute.make_strategy(FLAGS.strategy, tpu=FLAGS.tpu, num_gpus=FLAGS.num_gpus,
                                      cpu_devices=FLAGS.cpu_devices)
  if FLAGS.strategy == "multi_worker":
    compat.apply()  # warns (and patches nothing) on a Keras version it is not for
  return strategy


def define_recipe_flag():
  from autonl_tf import recipes
  flags.DEFINE_enum("recipe", "imagenet", list(recipes.RECIPES),
                    "Training recipe: imagenet (the paper's: RMSProp, exponential decay) or cifar "
                    "(SGD + Nesterov, cosine, weight decay 5e-4). It sets the defaults of the "
                    "optimizer flags; a flag given on the command line overrides its value.")


def recipe_fields(kind, flag_values):
  """The recipe's `kind` (`train` / `search`) field values, overridden by the
  flags of `flag_values` ({field: its flag's value}) given on the command
  line; flags not given take the recipe's value when it has one, else their
  default."""
  from autonl_tf import recipes
  values = recipes.recipe(FLAGS.recipe, kind)
  for field, value in flag_values.items():
    if FLAGS[field].present or field not in values:
      values[field] = value
  return values
