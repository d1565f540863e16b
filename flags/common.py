"""Flags shared by several tools, and their conversion to library configs."""

import dataclasses
import os

from absl import flags

FLAGS = flags.FLAGS


def define_arch_flags(default_arch="autonl-s", default_size=224, default_classes=1000):
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


def define_data_flags():
  flags.DEFINE_string("dataset", "imagenet2012",
                      "TFDS name (imagenet2012, cifar10, fashion_mnist, imagenette, ...), "
                      "folder:PATH (PATH/<split>/<class>/<image>) or synthetic.")
  flags.DEFINE_string("data_dir", os.environ.get("TFDS_DATA_DIR"), "TFDS data directory.")
  flags.DEFINE_float("validation_fraction", 0.1,
                     "Share of train held out as validation when the dataset has no validation split.")
  flags.DEFINE_integer("randaugment_layers", 2, "RandAugment ops per image (large images; 0: off).")
  flags.DEFINE_float("randaugment_magnitude", 0.5, "RandAugment magnitude in [0, 1].")
  flags.DEFINE_integer("seed", None, "Seed of initialisation, shuffling and augmentation.")
  flags.DEFINE_bool("deterministic", False, "Reproducible input order (slower).")


def data_config_from_flags(num_classes=None):
  from autonl_tf.data import DataConfig
  return DataConfig(
      dataset=FLAGS.dataset,
      data_dir=os.path.expanduser(FLAGS.data_dir) if FLAGS.data_dir else None,
      input_size=FLAGS.input_size, num_classes=num_classes,
      validation_fraction=FLAGS.validation_fraction,
      randaugment_layers=FLAGS.randaugment_layers,
      randaugment_magnitude=FLAGS.randaugment_magnitude, seed=FLAGS.seed,
      deterministic=FLAGS.deterministic)


def synthetic_classes():
  """num_classes only matters for synthetic data; real datasets bring theirs."""
  return FLAGS.num_classes if FLAGS.dataset == "synthetic" else None


def define_distribute_flags():
  flags.DEFINE_enum("strategy", "default", ["default", "one_device", "mirrored", "multi_worker", "tpu"],
                    "tf.distribute strategy: mirrored = all local GPUs (or --cpu_devices logical "
                    "CPUs); multi_worker = MultiWorkerMirroredStrategy, cluster from TF_CONFIG; "
                    "tpu = TPUStrategy on --tpu.")
  flags.DEFINE_string("tpu", None, "TPU name or grpc:// address ('' or 'local' on a TPU VM).")
  flags.DEFINE_integer("num_gpus", None, "mirrored: use only the first N GPUs.")
  flags.DEFINE_integer("cpu_devices", None, "Split the CPU into N logical devices (to exercise "
                       "mirrored on a machine without GPUs).")
  flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                    "Compute precision: mixed_bfloat16 for TPUs and bf16 CPUs, mixed_float16 "
                    "for GPUs (with dynamic loss scaling).")
  flags.DEFINE_bool("sync_bn", False, "Batch-norm statistics over all replicas (the global batch).")


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
  flags.DEFINE_enum("recipe", "imagenet", ["imagenet", "cifar"],
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
