"""Flags shared by several tools."""

from absl import flags


def define_arch_flags(default_arch="autonl-s", default_size=224, default_classes=1000):
  flags.DEFINE_string("arch", default_arch,
                      "Architecture: a preset (autonl-s, autonl-l, mobilenet-v2) or an arch file path.")
  flags.DEFINE_integer("input_size", default_size, "Input image height and width.")
  flags.DEFINE_integer("num_classes", default_classes, "Number of classes.")
