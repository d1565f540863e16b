"""Preprocessing against NumPy/PIL, and the pipelines on TFDS mock data, an
image folder, a real TFDS dataset made offline from fake sources, and synthetic."""

from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from autonl_tf.data import DataConfig, DataError, dataset_info, make_dataset, preprocess
from autonl_tf.data import import_tfds

MEAN = np.array([0.485, 0.456, 0.406]) * 255
STD = np.array([0.229, 0.224, 0.225]) * 255


def smooth_image(h, w, seed=0):
  """A smooth RGB image (JPEG-friendly) with some texture."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w]
  img = np.stack([128 + 100 * np.sin(xx / 7.0 + c) * np.cos(yy / 11.0 - c) for c in range(3)], -1)
  img += rng.normal(0, 3, img.shape)
  return np.clip(img, 0, 255).astype(np.uint8)


def numpy_crop_window(h, w, size=224):
  side = int(np.float32(size / (size + 32)) * np.float32(min(h, w)))
  return (h - side + 1) // 2, (w - side + 1) // 2, side


@pytest.mark.parametrize("h,w", [(120, 90), (100, 200), (150, 150), (300, 407), (91, 64)])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_eval_preprocessing_matches_pil(tmp_path, h, w, fmt):
  path = str(tmp_path / f"img.{fmt.lower()}")
  # 4:4:4 chroma, so that no decoder-specific chroma upsampling is compared.
  Image.fromarray(smooth_image(h, w)).save(path, format=fmt, quality=95, subsampling=0)
  data = tf.io.read_file(path)
  oh, ow, side = numpy_crop_window(h, w)
  window = preprocess.eval_crop_window(h, w, 224).numpy()
  np.testing.assert_array_equal(window, [oh, ow, side, side])
  pil = np.asarray(Image.open(path).convert("RGB")).astype(np.float64)
  crop = pil[oh:oh + side, ow:ow + side]
  ours = preprocess.decode_and_crop(data, lambda s: preprocess.eval_crop_window(s[0], s[1], 224))
  diff = np.abs(ours.numpy().astype(np.float64) - crop)
  if fmt == "PNG":
    assert diff.max() == 0
  else:  # JPEG decoders may differ by a level or two in chroma upsampling.
    assert diff.mean() < 1.0 and diff.max() <= 8
  image = preprocess.eval_image_from_bytes(data, 224).numpy()
  assert image.shape == (224, 224, 3)
  if side < 224:  # upsampling: PIL's bicubic (a=-0.5) and TF's agree closely
    ref = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize((224, 224), Image.BICUBIC),
                     dtype=np.float64)
    assert np.abs(image - ref).mean() < 1.5
  normalized = preprocess.normalize(image).numpy()
  np.testing.assert_allclose(normalized, (image - MEAN) / STD, rtol=1e-5, atol=1e-5)


def test_train_preprocessing_large_and_small():
  seed = tf.constant([1, 2], tf.int64)
  data = tf.io.encode_jpeg(smooth_image(180, 240))
  big = preprocess.train_image_from_bytes(data, 64, seed)
  assert big.shape == (64, 64, 3) and 0 <= big.numpy().min() and big.numpy().max() <= 255
  np.testing.assert_array_equal(big.numpy(), preprocess.train_image_from_bytes(data, 64, seed).numpy())
  small = smooth_image(32, 32)
  out = preprocess.train_image(tf.constant(small), 32, seed).numpy()
  # pad-4 random crop + flip: the result is a shifted (maybe flipped) window
  # of the zero-padded image.
  padded = np.pad(small, [(4, 4), (4, 4), (0, 0)]).astype(np.float32)
  windows = [padded[i:i + 32, j:j + 32] for i in range(9) for j in range(9)]
  assert any(np.array_equal(out, win) or np.array_equal(out, win[:, ::-1]) for win in windows)
  gray = preprocess.train_image(tf.zeros([28, 28, 1], tf.uint8), 32, seed)
  assert gray.shape == (32, 32, 3)


def make_folder(root, corrupt=False):
  for split, n in (("train", 6), ("test", 4)):
    for label in ("cat", "dog"):
      d = root / split / label
      d.mkdir(parents=True)
      for i in range(n):
        fmt = "JPEG" if i % 2 else "PNG"
        Image.fromarray(smooth_image(40 + i, 50, i)).save(d / f"{i}.{fmt.lower()}", format=fmt)
  if corrupt:
    (root / "train" / "dog" / "bad.jpg").write_bytes(b"not an image at all")
  return root


def check_batches(ds, batch, size, num_classes, max_batches=3):
  seen = 0
  for images, labels in ds.take(max_batches):
    assert images.dtype == tf.float32 and labels.dtype == tf.int32
    assert images.shape[1:] == (size, size, 3) and images.shape[0] <= batch
    x = images.numpy()
    # Normalised 0-255 pixels lie within [-mean/std, (255-mean)/std].
    assert x.min() >= (-MEAN / STD).min() - 1e-4 and x.max() <= ((255 - MEAN) / STD).max() + 1e-4
    assert labels.numpy().min() >= 0 and labels.numpy().max() < num_classes
    seen += 1
  return seen


def test_image_folder(tmp_path):
  root = make_folder(tmp_path / "pets")
  config = DataConfig(f"folder:{root}", input_size=32, seed=1)
  info = dataset_info(config)
  assert info.num_classes == 2 and info.class_names == ["cat", "dog"]
  # No validation split: 10% of train (12 images) is held out.
  assert info.split_sizes == {"train": 11, "validation": 1, "test": 8}
  assert check_batches(make_dataset(config, "train", 4, training=True), 4, 32, 2) == 3
  test = list(make_dataset(config, "test", 3, training=False))
  assert sum(int(b[1].shape[0]) for b in test) == 8
  large = DataConfig(f"folder:{root}", input_size=72, randaugment_layers=1, seed=2)
  assert check_batches(make_dataset(large, "train", 2, training=True), 2, 72, 2) == 3
  assert check_batches(make_dataset(large, "test", 4, training=False), 4, 72, 2) == 2


def test_corrupt_image_is_named(tmp_path):
  root = make_folder(tmp_path / "pets", corrupt=True)
  with pytest.raises(DataError, match=r"corrupt or unreadable image .*bad\.jpg"):
    make_dataset(DataConfig(f"folder:{root}", input_size=32), "train", 2, training=True)


def test_empty_class_folder_is_named(tmp_path):
  """Issue 18, point 7: an empty class folder silently became a class."""
  root = make_folder(tmp_path / "pets")
  (root / "train" / "bird").mkdir()
  (root / "train" / "bird" / "notes.txt").write_text("no images here")
  with pytest.raises(DataError, match=f"^class folder {root}/train/bird has no images "
                     r"\(.jpg, .jpeg, .png, .gif, .bmp\): add some or remove it"):
    dataset_info(DataConfig(f"folder:{root}", input_size=32))


def test_input_size_must_be_positive():
  for size in (0, -32, 32.5, None):
    with pytest.raises(DataError, match=f"must be a positive number of pixels, got {size!r}$"):
      DataConfig("synthetic", input_size=size, num_classes=2)


def test_synthetic_is_deterministic_and_learnable():
  config = DataConfig("synthetic", input_size=16, num_classes=5)
  a = next(iter(make_dataset(config, "test", 8, training=False)))
  b = next(iter(make_dataset(config, "test", 8, training=False)))
  np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
  assert check_batches(make_dataset(config, "train", 8, training=True), 8, 16, 5) == 3
  # The class colour is recoverable from the mean pixel: labels are learnable.
  x, y = next(iter(make_dataset(config, "train", 500, training=True)))
  means = x.numpy().mean(axis=(1, 2))
  centroids = np.stack([means[y.numpy() == k].mean(0) for k in range(5)])
  nearest = np.argmin(((means[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
  assert (nearest == y.numpy()).mean() > 0.9


def test_tfds_mock_data_large_images():
  tfds = import_tfds()
  with tfds.testing.mock_data(num_examples=12), \
      mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    config = DataConfig("imagenette", input_size=80, seed=0)
    info = dataset_info(config)
    assert info.num_classes == 10
    assert check_batches(make_dataset(config, "train", 4, training=True), 4, 80, 10) == 3
    assert check_batches(make_dataset(config, "validation", 4, training=False), 4, 80, 10) == 3


def test_tfds_mock_data_grayscale_small():
  tfds = import_tfds()
  with tfds.testing.mock_data(num_examples=10), \
      mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    config = DataConfig("fashion_mnist", input_size=32, seed=0)
    assert check_batches(make_dataset(config, "train", 5, training=True), 5, 32, 10) == 3


def test_distributed_per_replica_batches():
  strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
  from autonl_tf.data import distributed_dataset
  ds = distributed_dataset(strategy, DataConfig("synthetic", input_size=8, num_classes=3), "train",
                           6, training=True)
  images, labels = next(iter(ds))
  assert images.shape == (6, 8, 8, 3)


def test_bad_inputs(tmp_path):
  with pytest.raises(DataError, match="unknown dataset 'no_such_dataset_xyz'"):
    dataset_info(DataConfig("no_such_dataset_xyz"))
  with pytest.raises(DataError, match="data_dir .* does not exist"):
    dataset_info(DataConfig("cifar10", data_dir=str(tmp_path / "nowhere")))
  with pytest.raises(DataError, match="is not prepared in"):
    dataset_info(DataConfig("cifar10", data_dir=str(tmp_path)))
  with pytest.raises(DataError, match="does not exist"):
    dataset_info(DataConfig(f"folder:{tmp_path}/missing"))
  with pytest.raises(DataError, match="needs num_classes"):
    dataset_info(DataConfig("synthetic"))
  with pytest.raises(DataError, match="unknown split 'dev'"):
    make_dataset(DataConfig("synthetic", input_size=8, num_classes=2), "dev", 2, training=False)
