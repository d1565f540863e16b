"""Architecture strings (official `arch.txt` format) and presets. Pure Python."""

from autonl_tf.arch.codec import (ACTIVATIONS, NL_NORMS, Arch, ArchLimitError, ArchLimits,
                                  BlockSpec, check_activation, check_limits, check_nl_norm,
                                  expand_blocks, format_arch, format_block, parse_arch,
                                  parse_block)
from autonl_tf.arch.presets import PRESETS, load, name_kind, preset_path
from autonl_tf.arch.transforms import round_filters, scale_width, without_lightnl

__all__ = ["ACTIVATIONS", "NL_NORMS", "Arch", "ArchLimitError", "ArchLimits", "BlockSpec",
           "check_activation", "check_limits", "check_nl_norm",
           "expand_blocks", "format_arch", "format_block",
           "parse_arch", "parse_block", "PRESETS", "load", "name_kind", "preset_path", "round_filters",
           "scale_width", "without_lightnl"]
