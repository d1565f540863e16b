"""Published architectures shipped as arch files inside the package."""

import os
from typing import Dict, Optional, Tuple, Union

from autonl_tf.arch import codec

_DIR = os.path.join(os.path.dirname(__file__), "presets")

#: name -> (file name, what it is).
PRESETS: Dict[str, Tuple[str, str]] = {
    "autonl-s": ("autonl-s.txt", "AutoNL-S (Li et al. 2020): 267M MACs, 4.4M params, 76.5% top-1"),
    "autonl-l": ("autonl-l.txt", "AutoNL-L (Li et al. 2020): 353M MACs, 5.6M params, 77.7% top-1"),
    "autonl-s-cifar": ("autonl-s-cifar.txt", "AutoNL-S's blocks on a 32px (CIFAR) macro: stride-1 "
                       "stem, three downsamplings, last stage at 4x4"),
    "autonl-l-cifar": ("autonl-l-cifar.txt", "AutoNL-L's blocks on a 32px (CIFAR) macro: stride-1 "
                       "stem, three downsamplings, last stage at 4x4"),
    "mobilenet-v2": ("mobilenet-v2.txt", "MobileNetV2 1.0 macro (Sandler et al. 2018): ~300M MACs"),
    "mobilenetv2-cifar": ("mobilenetv2-cifar.txt", "MobileNetV2's blocks (k3, e6, ReLU6) on the "
                          "32px macro of autonl-s-cifar: stride-1 stem and first 24-channel "
                          "block, three downsamplings; 88.0M MACs, 2.24M params at 10 classes"),
}

#: `<preset>:<width>`: the preset with every channel count times the width
#: (`transforms.scale_width`, the head included), e.g. `mobilenetv2-cifar:0.5`.
WIDTH_SEPARATOR = ":"


def preset_path(name: str) -> str:
  if name not in PRESETS:
    raise ValueError(f"unknown arch preset '{name}'; known: {', '.join(sorted(PRESETS))}")
  return os.path.join(_DIR, PRESETS[name][0])


def name_kind(name: str) -> Optional[str]:
  """What `load` reads `name` as: `preset`, `file`, `scaled preset`
  (`<preset>:<width>`), or None (no arch of the codec: e.g. an anchor's
  name, `models.anchors`). Pure Python, as is `load`."""
  if name in PRESETS:
    return "preset"
  if os.path.exists(name):
    return "file"
  if name.rpartition(WIDTH_SEPARATOR)[0] in PRESETS:
    return "scaled preset"
  return None


def load(arch: Union[str, os.PathLike, codec.Arch],
         limits: Optional[codec.ArchLimits] = None) -> codec.Arch:
  """Loads an arch from a preset name (`autonl-s-cifar`, or at a width:
  `mobilenetv2-cifar:0.5`), an arch file path, or passes an `Arch`.

  A sequence of `BlockSpec`s or of block strings is accepted too.

  Raises:
    ValueError: unknown preset name, unreadable file or malformed contents,
      with the file name in the message.
    ArchLimitError: an arch above `limits` (default `codec.ArchLimits()`).
  """
  if isinstance(arch, codec.Arch):
    codec.check_limits(arch, limits)
    return arch
  if isinstance(arch, (list, tuple)):
    if all(isinstance(b, codec.BlockSpec) for b in arch):
      return codec.parse_arch(codec.format_arch(codec.Arch(blocks=tuple(arch))), limits)
    if all(isinstance(b, str) for b in arch):
      return codec.parse_arch("\n".join(arch), limits)
    raise TypeError("arch sequence must hold BlockSpec objects or block strings")
  if not isinstance(arch, (str, os.PathLike)):
    raise TypeError(f"arch must be a preset name, a path or an Arch, got {type(arch).__name__}")
  name = os.fspath(arch)
  kind = name_kind(name)
  if kind == "preset":
    path = preset_path(name)
  elif kind == "file":
    path = name
  elif kind == "scaled preset":
    base, _, width = name.rpartition(WIDTH_SEPARATOR)
    return _scaled_preset(name, base, width, limits)
  else:
    raise ValueError(f"arch '{name}' is neither a preset ({', '.join(sorted(PRESETS))}) "
                     "nor an existing arch file")
  try:
    with open(path, "r", encoding="utf-8") as f:
      text = f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise ValueError(f"cannot read arch file '{path}': {e}") from None
  try:
    return codec.parse_arch(text, limits)
  except ValueError as e:
    raise type(e)(f"{path}: {e}") from None


def _scaled_preset(name, base, width, limits):
  """`<base>:<width>`: the preset `base` at `width` (a number in (0, 8])."""
  from autonl_tf.arch import transforms
  try:
    multiplier = float(width)
  except ValueError:
    multiplier = -1.0
  if not 0 < multiplier <= 8:
    raise ValueError(f"arch '{name}': the width multiplier after '{WIDTH_SEPARATOR}' must be a "
                     f"number in (0, 8], got '{width}'")
  arch = transforms.scale_width(load(base), multiplier)
  codec.check_limits(arch, limits)
  return arch
