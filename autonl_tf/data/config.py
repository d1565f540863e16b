"""`DataConfig`: what a run reads and how it preprocesses it, with every
default (pure Python: the data flags derive from it without importing
TensorFlow)."""

import dataclasses
import numbers
from typing import Optional

from autonl_tf import constants

#: Input sizes up to this are "small" (CIFAR-like): pad-crop-flip for training
#: and no centre crop for evaluation.
SMALL_IMAGE_MAX = 64


class DataError(ValueError):
  """A dataset problem a user can fix (bad name, missing files, corrupt image)."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """What to read and how to preprocess it.

  Attributes:
    dataset: TFDS name, `folder:PATH` or `synthetic`.
    data_dir: TFDS data directory (None: TFDS's default).
    input_size: model input height and width.
    num_classes: required for `synthetic`; checked against the dataset
      otherwise when given.
    validation_fraction: share of train held out as validation when the
      dataset has no validation split.
    randaugment_layers: RandAugment ops per image for large images (0: off).
    randaugment_magnitude: RandAugment magnitude in [0, 1].
    seed: seed of shuffling and augmentation, and of the initialisation in
      the tools (None: a fresh one per run).
    deterministic: keep element order fixed (reproducible with a seed).
    shuffle_buffer: shuffle buffer size.
    cache: cache decoded examples in memory ('auto': when they fit in 4 GB).
  """
  dataset: str
  data_dir: Optional[str] = None
  input_size: int = constants.INPUT_SIZE
  num_classes: Optional[int] = None
  validation_fraction: float = 0.1
  randaugment_layers: int = 2
  randaugment_magnitude: float = 0.5
  seed: Optional[int] = None
  deterministic: bool = False
  shuffle_buffer: int = 10000
  cache: str = "auto"

  def __post_init__(self):
    if isinstance(self.input_size, bool) or not isinstance(self.input_size, numbers.Integral) \
        or self.input_size < 1:
      raise DataError(f"the input size (input_size, --input_size) must be a positive number of "
                      f"pixels, got {self.input_size!r}")

  @property
  def small(self) -> bool:
    return self.input_size <= SMALL_IMAGE_MAX
