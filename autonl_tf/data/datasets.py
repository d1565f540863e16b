"""tf.data input pipelines over TFDS, image folders and synthetic data.

`dataset` names a source:
  * any TFDS dataset (`imagenet2012`, `cifar10`, `fashion_mnist`, ...), read
    from `data_dir` (prepared beforehand: `tools/prepare_data.py`);
  * `folder:PATH`, an image folder in TFDS's ImageFolder layout
    `PATH/<split>/<class>/<image>`;
  * `synthetic`, random but learnable images and labels generated in-graph
    (for smoke runs and benchmarks).

Splits are `train`, `validation` (a held-out tail of train when the dataset
has none) and `test` (the validation split when the dataset has no test).
"""

import dataclasses
import functools
import os
from typing import List, Optional

import numpy as np
import tensorflow as tf

from autonl_tf.data import preprocess
from autonl_tf.data.config import DataConfig, DataError

SPLITS = ("train", "validation", "test")
SYNTHETIC = "synthetic"
FOLDER_PREFIX = "folder:"
_SYNTHETIC_SIZES = {"train": 10000, "validation": 1000, "test": 1000}
_CACHE_LIMIT_BYTES = 4 << 30
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  num_classes: int
  class_names: List[str]
  split_sizes: dict
  image_shape: tuple


# ----------------------------------------------------------------- sources ---

def import_tfds():
  """`tensorflow_datasets`, imported with the backport it needs (imported
  on first use: TFDS is slow to import)."""
  import sys
  try:  # TFDS 4.9.10 imports this backport when preparing data but does not declare it.
    import importlib_resources  # noqa: F401
  except ImportError:
    import importlib.resources
    sys.modules["importlib_resources"] = importlib.resources
  import tensorflow_datasets as tfds
  return tfds


@functools.lru_cache(maxsize=None)
def _check_folder_images(root: str):
  """Fails on the first unreadable image, naming the file (decoding errors
  inside tf.data would only say 'Invalid argument' mid-training), and on a
  class folder without images (it would silently become a class).

  Cached per folder: every `make_dataset` / `dataset_info` call builds a
  `_Source`, and a training run asks for several splits of the same folder;
  the scan (which opens every image) runs once per process.
  """
  from PIL import Image
  for split in sorted(os.listdir(root)):
    split_dir = os.path.join(root, split)
    for label in sorted(os.listdir(split_dir)) if os.path.isdir(split_dir) else []:
      class_dir = os.path.join(split_dir, label)
      if os.path.isdir(class_dir) and not any(
          f.lower().endswith(_IMAGE_SUFFIXES) for f in os.listdir(class_dir)):
        raise DataError(f"class folder {class_dir} has no images "
                        f"({', '.join(_IMAGE_SUFFIXES)}): add some or remove it (it would be a "
                        "class of its own)")
  for dirpath, _, files in os.walk(root):
    for name in sorted(files):
      if not name.lower().endswith(_IMAGE_SUFFIXES):
        continue
      path = os.path.join(dirpath, name)
      try:
        with Image.open(path) as im:
          im.verify()
      except Exception as e:  # PIL raises many types for bad files.
        raise DataError(f"corrupt or unreadable image {path}: {e}") from None


class _Source:
  """Resolves a dataset name to a builder and split names."""

  def __init__(self, config: DataConfig):
    self.config = config
    self.kind = ("synthetic" if config.dataset == SYNTHETIC else
                 "folder" if config.dataset.startswith(FOLDER_PREFIX) else "tfds")
    self.builder = None
    if self.kind == "synthetic":
      if not config.num_classes or config.num_classes < 1:
        raise DataError("dataset 'synthetic' needs num_classes >= 1")
      return
    tfds = import_tfds()
    if self.kind == "folder":
      root = config.dataset[len(FOLDER_PREFIX):]
      if not os.path.isdir(root):
        raise DataError(f"image folder {root} does not exist")
      splits = [d for d in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, d))]
      if "train" not in splits:
        raise DataError(f"image folder {root} needs split subfolders like {root}/train/<class>/<image> "
                        f"(found: {', '.join(splits) or 'none'})")
      _check_folder_images(root)
      self.builder = tfds.folder_dataset.ImageFolder(root)
    else:
      if config.data_dir is not None and not os.path.isdir(config.data_dir):
        raise DataError(f"data_dir {config.data_dir} does not exist")
      try:
        self.builder = tfds.builder(config.dataset, data_dir=config.data_dir)
      except Exception as e:  # DatasetNotFoundError and friends
        raise DataError(f"unknown dataset '{config.dataset}': use a TFDS name (e.g. cifar10, "
                        f"imagenet2012), folder:PATH or synthetic ({type(e).__name__})") from None
      if not self.builder.is_prepared():
        raise DataError(f"dataset '{config.dataset}' is not prepared in {self.builder.data_dir}: "
                        f"run tools/prepare_data.py --dataset={config.dataset} "
                        f"--data_dir={config.data_dir or '<data_dir>'}")

  def _sizes(self):
    return {k: int(v.num_examples) for k, v in self.builder.info.splits.items()}

  def resolve_split(self, split: str):
    """(split name, start, stop): stop/start None = the whole split."""
    if split not in SPLITS:
      raise DataError(f"unknown split '{split}' (expected one of {', '.join(SPLITS)})")
    sizes = self._sizes()
    if not sizes:  # no split metadata (e.g. tfds.testing.mock_data): names as given
      return split, None, None
    if split in sizes:
      return split, None, None
    if split == "test" and "validation" in sizes:
      return "validation", None, None
    if split == "validation" or split == "test":
      held_out_start = self._train_keep(sizes)
      return "train", held_out_start, sizes["train"]
    raise DataError(f"dataset '{self.config.dataset}' has no '{split}' split")

  def _has_split(self, split):
    try:
      self.resolve_split(split)
      return True
    except DataError:
      return False

  def _train_keep(self, sizes):
    n = sizes["train"]
    return n - max(1, int(round(n * self.config.validation_fraction)))

  def read_spec(self, split: str):
    """The split to read plus the (start, stop) slice to apply, with train
    losing its held-out tail when the dataset has no validation split."""
    name, start, stop = self.resolve_split(split)
    sizes = self._sizes()
    if split == "train" and sizes and "validation" not in sizes:
      start, stop = 0, self._train_keep(sizes)
    return name, start, stop

  def split_size(self, split: str):
    sizes = self._sizes()
    if not sizes:
      return None
    name, start, stop = self.read_spec(split)
    return sizes[name] if start is None else stop - start

  def info(self) -> DatasetInfo:
    c = self.config
    if self.kind == "synthetic":
      return DatasetInfo(SYNTHETIC, c.num_classes, [f"class_{i}" for i in range(c.num_classes)],
                         dict(_SYNTHETIC_SIZES), (c.input_size, c.input_size, 3))
    features = self.builder.info.features
    label = features["label"]
    sizes = {s: self.split_size(s) for s in SPLITS if self._has_split(s)}
    info = DatasetInfo(c.dataset, int(label.num_classes), list(label.names), sizes,
                       tuple(features["image"].shape))
    if c.num_classes and c.num_classes != info.num_classes:
      raise DataError(f"dataset '{c.dataset}' has {info.num_classes} classes, "
                      f"but num_classes={c.num_classes} was given")
    return info


def is_prepared(config: DataConfig) -> bool:
  """Whether `config`'s data can be read without a download: synthetic data
  and image folders always, a TFDS dataset once prepared in its data_dir."""
  if config.dataset == SYNTHETIC or config.dataset.startswith(FOLDER_PREFIX):
    return True
  return import_tfds().builder(config.dataset, data_dir=config.data_dir).is_prepared()


def dataset_info(config: DataConfig) -> DatasetInfo:
  """Classes, class names and split sizes of `config.dataset`."""
  return _Source(config).info()


# --------------------------------------------------------------- pipelines ---

def _synthetic(config: DataConfig, split: str, input_context, repeat=False, skip=0):
  """Learnable random data: a class-dependent colour plus uniform noise,
  already at `input_size`, 0-255 floats. Deterministic per (split, index).
  `skip` elements of the (repeated) stream are left out before they are
  generated."""
  n = _SYNTHETIC_SIZES[split]
  size, classes = config.input_size, config.num_classes
  split_seed = SPLITS.index(split) + 1
  palette = tf.constant(np.random.default_rng(7).uniform(0, 255, (classes, 3)), tf.float32)

  def make(i):
    seed = tf.stack([tf.constant(split_seed, tf.int64), i])
    label = tf.random.stateless_uniform([], seed, 0, classes, dtype=tf.int32)
    noise = tf.random.stateless_uniform([size, size, 3], seed + 1, 0, 255)
    return 0.6 * noise + 0.4 * palette[label], label

  ds = tf.data.Dataset.range(n)
  if input_context and input_context.num_input_pipelines > 1:
    ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
  if repeat:
    ds = ds.repeat()
  if skip:
    ds = ds.skip(skip)
  return ds.map(make, num_parallel_calls=tf.data.AUTOTUNE)


def _seed_dataset(seed):
  if seed is None:
    seed = int(np.random.SeedSequence().generate_state(1)[0])
  return tf.data.Dataset.random(seed=seed).batch(2)


def _records(source: "_Source", config: DataConfig, split: str, training: bool, repeat: bool,
             input_context, options, decode_bytes: bool) -> tf.data.Dataset:
  """The undecoded examples of `split` from TFDS or an image folder: this
  pipeline's shard, cached when they fit, shuffled when training, repeated."""
  tfds = import_tfds()
  name, start, stop = source.read_spec(split)
  sliced = start is not None
  # TFDS slices by name; ImageFolder cannot, so it reads in order and skips/takes.
  tfds_split = f"{name}[{start}:{stop}]" if sliced and source.kind == "tfds" else name
  slice_in_pipeline = sliced and source.kind != "tfds"
  info = source.info()
  read_config = tfds.ReadConfig(shuffle_seed=config.seed, try_autocache=False,
                                options=options)
  shard_by_element = False
  if input_context and input_context.num_input_pipelines > 1:
    shards = 0 if source.kind != "tfds" else (source.builder.info.splits[name].num_shards or 0)
    if not slice_in_pipeline and shards >= input_context.num_input_pipelines:
      read_config = dataclasses.replace(read_config, input_context=input_context)
    else:
      shard_by_element = True
  decoders = {"image": tfds.decode.SkipDecoding()} if decode_bytes else None
  ds = source.builder.as_dataset(split=tfds_split, as_supervised=True, decoders=decoders,
                                 shuffle_files=training and not slice_in_pipeline,
                                 read_config=read_config)
  if slice_in_pipeline:
    ds = ds.skip(start).take(stop - start)
  if shard_by_element:
    ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
  n_examples = info.split_sizes.get(split)
  h, w, c = (d or config.input_size for d in info.image_shape)
  fits = n_examples is not None and n_examples * h * w * c < _CACHE_LIMIT_BYTES
  if config.cache == "always" or (config.cache == "auto" and not decode_bytes and fits):
    ds = ds.cache()
  if training:
    ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()
  return ds


def _decoded(ds: tf.data.Dataset, config: DataConfig, training: bool, skip: int,
             decode_bytes: bool) -> tf.data.Dataset:
  """Examples decoded and preprocessed to `[S, S, 3]` float32 images and
  int32 labels, after the first `skip` (each training example paired with
  its augmentation seed first, so that a skip keeps the seeds in step)."""
  size = config.input_size
  if training:
    ds = tf.data.Dataset.zip((ds, _seed_dataset(config.seed)))
  if skip:
    ds = ds.skip(skip)  # before the map: examples and their augmentation seeds, undecoded
  if training:
    if decode_bytes:
      fn = lambda ex, seed: (preprocess.train_image_from_bytes(ex[0], size, seed), ex[1])
    else:
      fn = lambda ex, seed: (preprocess.train_image(ex[0], size, seed), ex[1])
  else:
    if decode_bytes:
      fn = lambda image, label: (preprocess.eval_image_from_bytes(image, size), label)
    else:
      fn = lambda image, label: (preprocess.eval_image(image, size), label)
  ds = ds.map(lambda *a: (lambda x, y: (tf.ensure_shape(x, [size, size, 3]),
                                        tf.cast(y, tf.int32)))(*fn(*a)),
              num_parallel_calls=tf.data.AUTOTUNE)
  return ds


def make_dataset(config: DataConfig, split: str, batch_size: int, training: bool,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 drop_remainder: Optional[bool] = None, repeat: Optional[bool] = None,
                 normalize: bool = True, skip_batches: int = 0) -> tf.data.Dataset:
  """Builds the batched dataset of `split` for one input pipeline.

  Args:
    config: a `DataConfig`.
    split: `train`, `validation` or `test`.
    batch_size: batch size of this pipeline (per replica under a strategy).
    training: random augmentation and shuffling.
    input_context: from `distribute_datasets_from_function`; shards the data.
    drop_remainder: static batch shapes (default: when training).
    repeat: repeat forever (default: when training).
    normalize: apply the ImageNet mean/std (False: keep 0-255, as exported
      SavedModels take).
    skip_batches: batches of this pipeline already consumed (a resumed run):
      the stream starts where they end, as it would have gone on without the
      interruption (bit for bit with `seed` and `deterministic`). The
      examples (and their augmentation seeds) are skipped after
      shuffle/repeat and before decoding and augmentation; skipping still
      reads them, a pass over the raw records per epoch skipped (in memory
      when the dataset is cached). Nothing is skipped where the stream is
      new in every run: a shuffled dataset without a `seed`.

  Returns:
    a dataset of `(images, labels)`: float32 `[B, S, S, 3]` (normalised with
    the ImageNet mean/std unless `normalize=False`) and int32 `[B]` labels.
  """
  if batch_size < 1:
    raise DataError(f"batch_size must be positive, got {batch_size}")
  if skip_batches < 0:
    raise DataError(f"skip_batches must be >= 0, got {skip_batches}")
  drop_remainder = training if drop_remainder is None else drop_remainder
  repeat = training if repeat is None else repeat
  source = _Source(config)
  replayed = source.kind == "synthetic" or not training or config.seed is not None
  # Whole batches: the stream repeats before it is batched.
  skip = int(skip_batches) * batch_size if replayed else 0
  options = tf.data.Options()
  options.deterministic = config.deterministic or not training  # eval order stays fixed
  options.experimental_optimization.map_parallelization = True

  if source.kind == "synthetic":
    if split not in SPLITS:
      raise DataError(f"unknown split '{split}' (expected one of {', '.join(SPLITS)})")
    ds = _synthetic(config, split, input_context, repeat, skip)
    if normalize:
      ds = ds.map(lambda x, y: (preprocess.normalize(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=drop_remainder).with_options(options).prefetch(
        tf.data.AUTOTUNE)

  decode_bytes = not config.small  # large images: crop while decoding JPEGs
  ds = _records(source, config, split, training, repeat, input_context, options, decode_bytes)
  ds = _decoded(ds, config, training, skip, decode_bytes)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  if training and not config.small and config.randaugment_layers > 0:
    import keras_cv
    augment = keras_cv.layers.RandAugment(
        value_range=(0, 255), augmentations_per_image=config.randaugment_layers,
        magnitude=config.randaugment_magnitude, seed=config.seed)
    ds = ds.map(lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE)
  if normalize:
    ds = ds.map(lambda x, y: (preprocess.normalize(x), y), num_parallel_calls=tf.data.AUTOTUNE)
  return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def distributed_dataset(strategy: tf.distribute.Strategy, config: DataConfig, split: str,
                        global_batch_size: int, training: bool, skip_steps: int = 0, **kwargs):
  """Per-replica pipelines through `strategy.distribute_datasets_from_function`.

  `skip_steps`: global steps already taken (a resumed run, see
  `backup.saved_step`); each pipeline skips the batches it fed them (one per
  local replica and step)."""
  if global_batch_size % strategy.num_replicas_in_sync:
    raise DataError(f"global batch size {global_batch_size} is not divisible by the "
                    f"{strategy.num_replicas_in_sync} replicas")

  def fn(ctx):
    per_pipeline = ctx.num_replicas_in_sync // ctx.num_input_pipelines
    return make_dataset(config, split, ctx.get_per_replica_batch_size(global_batch_size),
                        training, input_context=ctx, skip_batches=skip_steps * per_pipeline,
                        **kwargs)

  return strategy.distribute_datasets_from_function(fn)
