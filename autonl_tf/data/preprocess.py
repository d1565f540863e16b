"""Image preprocessing (arXiv 2004.01961, section 5, "Experiments", which
evaluates as MnasNet does): the paper's eval crop, the Inception-style
random-resized crop for large images and pad-crop-flip for small ones. All
functions run inside tf.data (graph mode, no Python I/O).

Randomness is stateless: every random op takes an explicit `seed` tensor of
shape [2], so a pipeline built with a fixed seed is reproducible even with
parallel map.
"""

import tensorflow as tf

from autonl_tf import constants
from autonl_tf.data import decoded_size
from autonl_tf.data.config import SMALL_IMAGE_MAX


def normalize(image):
  """float RGB in 0-255 -> (x - mean) / std with the ImageNet statistics."""
  mean = tf.constant(constants.MEAN_RGB, tf.float32)
  std = tf.constant(constants.STDDEV_RGB, tf.float32)
  return (tf.cast(image, tf.float32) - mean) / std


def eval_crop_window(height, width, input_size, padding=constants.EVAL_CROP_PADDING):
  """[offset_h, offset_w, size, size]: the centred square of side
  `input_size / (input_size + padding) * min(height, width)` (MnasNet)."""
  height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
  size = tf.cast(input_size / (input_size + padding) *
                 tf.cast(tf.minimum(height, width), tf.float32), tf.int32)
  size = tf.maximum(size, 1)
  return tf.stack([(height - size + 1) // 2, (width - size + 1) // 2, size, size])


def decode_and_crop(image_bytes, window_fn):
  """Decodes JPEG/PNG/GIF/BMP bytes to uint8 RGB and crops `window_fn(shape)`.

  JPEGs are decoded only inside the window (`decode_and_crop_jpeg`), which is
  what makes ImageNet-size pipelines fast.
  """
  def jpeg():
    window = window_fn(tf.image.extract_jpeg_shape(image_bytes))
    # INTEGER_ACCURATE (libjpeg's ISLOW, as PIL/OpenCV decode) rather than TF's
    # default INTEGER_FAST, which is off by ~1.4 levels on average.
    return tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3,
                                         dct_method="INTEGER_ACCURATE")

  def other():
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    w = window_fn(tf.shape(image))
    return tf.slice(image, [w[0], w[1], 0], [w[2], w[3], 3])

  image = tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)
  image.set_shape([None, None, 3])
  return image


def _resize(image, input_size):
  return tf.image.resize(tf.cast(image, tf.float32), [input_size, input_size],
                         method="bicubic")


def to_rgb(image):
  """uint8 [H, W, 1|3] -> [H, W, 3]."""
  if image.shape[-1] == 1:
    return tf.image.grayscale_to_rgb(image)
  return image


def eval_image_from_bytes(image_bytes, input_size):
  """The paper's evaluation: centre crop of `size/(size+32)` of the short
  side, bicubic resize to `input_size`, 0-255 float (not yet normalised)."""
  image = decode_and_crop(image_bytes, lambda s: eval_crop_window(s[0], s[1], input_size))
  return tf.clip_by_value(_resize(image, input_size), 0.0, 255.0)


def eval_image(image, input_size):
  """Same as `eval_image_from_bytes` for an already decoded uint8 image.

  Small inputs (<= SMALL_IMAGE_MAX, e.g. CIFAR) are only resized when their
  size differs: a centre crop of 32/64 would throw half the image away.
  """
  image = to_rgb(image)
  if input_size <= SMALL_IMAGE_MAX:
    return _resize_if_needed(image, input_size)
  shape = tf.shape(image)
  w = eval_crop_window(shape[0], shape[1], input_size)
  image = tf.slice(image, [w[0], w[1], 0], [w[2], w[3], 3])
  return tf.clip_by_value(_resize(image, input_size), 0.0, 255.0)


def eval_image_any_size_from_bytes(image_bytes, input_size, max_pixels=None,
                                   limit_source=decoded_size.EXPORT_LIMIT):
  """Encoded bytes -> the evaluation image, as the eval pipeline makes it for
  this `input_size` (small sizes: decode and resize; large: crop while
  decoding). Used by exported models and `tools/predict.py`. Bytes that are
  not an image raise InvalidArgumentError; so do, before any decoding, images
  whose header declares more than `max_pixels` pixels (when given: the
  decompression-bomb guard of `decoded_size.check_decoded_size`)."""
  if max_pixels is not None:
    image_bytes = decoded_size.check_decoded_size(image_bytes, max_pixels, limit_source)
  if input_size <= SMALL_IMAGE_MAX:
    whole = lambda shape: tf.stack([0, 0, shape[0], shape[1]])
    return eval_image(decode_and_crop(image_bytes, whole), input_size)
  return eval_image_from_bytes(image_bytes, input_size)


def _resize_if_needed(image, input_size):
  shape = tf.shape(image)
  same = tf.logical_and(tf.equal(shape[0], input_size), tf.equal(shape[1], input_size))
  image = tf.cond(same, lambda: tf.cast(image, tf.float32),
                  lambda: tf.clip_by_value(_resize(image, input_size), 0.0, 255.0))
  return tf.ensure_shape(image, [input_size, input_size, 3])


def _random_window(shape, seed, input_size, area_range=(0.08, 1.0),
                   aspect_range=(3 / 4, 4 / 3)):
  """Inception-style distorted bounding box; falls back to the eval centre
  crop when no acceptable box was found in 10 attempts (as MnasNet)."""
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
      seed=seed, min_object_covered=0.1, aspect_ratio_range=aspect_range,
      area_range=area_range, max_attempts=10, use_image_if_no_bounding_boxes=True)
  window = tf.stack([begin[0], begin[1], size[0], size[1]])
  whole = tf.reduce_all(tf.equal(size[:2], tf.cast(shape[:2], size.dtype)))
  return tf.cond(whole, lambda: tf.cast(eval_crop_window(shape[0], shape[1], input_size), window.dtype),
                 lambda: window)


def train_image_from_bytes(image_bytes, input_size, seed):
  """Random-resized crop (area 0.08-1, aspect 3/4-4/3) + flip + bicubic."""
  seeds = tf.random.experimental.stateless_split(seed, 2)
  image = decode_and_crop(image_bytes, lambda s: _random_window(s, seeds[0], input_size))
  image = tf.image.stateless_random_flip_left_right(image, seeds[1])
  return tf.clip_by_value(_resize(image, input_size), 0.0, 255.0)


def train_image(image, input_size, seed):
  """Training augmentation of a decoded uint8 image.

  Small inputs: pad by 4 (reflect-free zero padding, as the CIFAR ResNet
  recipe), random `input_size` crop, flip. Large inputs: random-resized crop +
  flip + bicubic resize.
  """
  image = to_rgb(image)
  seeds = tf.random.experimental.stateless_split(seed, 2)
  if input_size <= SMALL_IMAGE_MAX:
    image = _resize_if_needed(image, input_size)
    image = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    image = tf.image.stateless_random_crop(image, [input_size, input_size, 3], seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seeds[1])
  shape = tf.shape(image)
  w = _random_window(shape, seeds[0], input_size)
  image = tf.slice(image, [w[0], w[1], 0], [w[2], w[3], 3])
  image = tf.image.stateless_random_flip_left_right(image, seeds[1])
  return tf.clip_by_value(_resize(image, input_size), 0.0, 255.0)
