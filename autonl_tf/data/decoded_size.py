"""The decoded size of an encoded image, read from its header in the graph
without decoding it: the guard against decompression bombs (a 20000x20000
PNG of a few kB decodes to 1.2 GB).

`decoded_pixels` reads JPEG's SOF (`tf.image.extract_jpeg_shape`), PNG's
IHDR, BMP's info header, WebP's VP8 / VP8L / VP8X header and GIF's logical
screen; an animated GIF or WebP counts every frame (the decoders hold all of
them in memory even when only the first is returned), found by walking the
file's blocks. `check_decoded_size` fails an image above a limit before any
decoder runs, with an `InvalidArgumentError` naming its size and the limit.
Bytes of no known format are refused by name as well (`tf.io.decode_image`
also decodes JPEG XL, whose header is not read here).
"""

import tensorflow as tf

#: The default limit: 4096 x 4096 pixels (48 MB of decoded RGB).
DEFAULT_MAX_PIXELS = 4096 * 4096

FORMATS_MESSAGE = "Unknown image file format: expected JPEG, PNG, GIF, BMP or WebP"

#: Bytes read past a header's start (zero padding beyond the end of the data).
_PAD = 32


def _bytes(image_bytes):
  """The encoded image as int64 values, zero-padded by `_PAD`, and its length."""
  data = tf.cast(tf.io.decode_raw(image_bytes, tf.uint8), tf.int64)
  return tf.pad(data, [[0, _PAD]]), tf.size(data, out_type=tf.int64)


def _le(data, start, n):
  """The little-endian unsigned integer of `n` bytes at `start`."""
  return sum(data[start + i] * (256 ** i) for i in range(n))


def _be(data, start, n):
  return sum(data[start + i] * (256 ** (n - 1 - i)) for i in range(n))


def _starts_with(data, offset, magic: bytes):
  return tf.reduce_all(tf.equal(data[offset:offset + len(magic)], list(magic)))


def _jpeg(image_bytes):
  shape = tf.image.extract_jpeg_shape(image_bytes, output_type=tf.int64)  # the SOF marker
  return shape[1], shape[0], tf.constant(1, tf.int64)


def _png(data):
  readable = _starts_with(data, 12, b"IHDR")
  return (tf.where(readable, _be(data, 16, 4), 0), tf.where(readable, _be(data, 20, 4), 0),
          tf.constant(1, tf.int64))


def _bmp(data):
  core = tf.equal(_le(data, 14, 4), 12)  # BITMAPCOREHEADER: 16-bit sizes
  width = tf.where(core, _le(data, 18, 2), _le(data, 18, 4))
  height = tf.where(core, _le(data, 20, 2), _le(data, 22, 4))
  height = tf.where(tf.logical_and(tf.logical_not(core), height >= 2 ** 31),
                    2 ** 32 - height, height)  # negative: a top-down bitmap
  return width, height, tf.constant(1, tf.int64)


def _gif(data, length):
  """Screen width, height and the number of frames (image descriptors),
  found by walking the blocks: header, colour table, then extensions and
  images, each followed by its data sub-blocks."""
  packed = data[10]
  start = 13 + tf.where(packed >= 128, 3 * 2 ** (packed % 8 + 1), 0)

  def body(pos, in_blocks, frames, area, done):
    b = data[pos]
    # In data sub-blocks: a size byte, then that many bytes; 0 ends them.
    sub_pos = tf.where(tf.equal(b, 0), pos + 1, pos + b + 1)
    is_ext, is_image = tf.equal(b, 0x21), tf.equal(b, 0x2C)
    local = data[pos + 9]
    image_pos = pos + 11 + tf.where(local >= 128, 3 * 2 ** (local % 8 + 1), 0)
    frame_area = _le(data, pos + 5, 2) * _le(data, pos + 7, 2)
    new_pos = tf.where(in_blocks, sub_pos, tf.where(is_image, image_pos, pos + 2))
    new_in_blocks = tf.where(in_blocks, tf.not_equal(b, 0), tf.logical_or(is_ext, is_image))
    new_image = tf.logical_and(tf.logical_not(in_blocks), is_image)
    # Anything else at a block start (0x3B, the trailer, or garbage) ends the walk.
    new_done = tf.logical_and(tf.logical_not(in_blocks), tf.logical_not(
        tf.logical_or(is_ext, is_image)))
    return (new_pos, new_in_blocks, frames + tf.cast(new_image, tf.int64),
            area + tf.where(new_image, frame_area, 0), new_done)

  _, _, frames, area, _ = tf.while_loop(
      lambda pos, in_blocks, frames, area, done: tf.logical_and(pos < length,
                                                                tf.logical_not(done)),
      body, (start, tf.constant(False), tf.constant(0, tf.int64), tf.constant(0, tf.int64),
             tf.constant(False)))
  width, height = _le(data, 6, 2), _le(data, 8, 2)
  # Frames may be larger than the screen: count the larger of the two areas.
  frames = tf.maximum(frames, 1)
  frames = tf.maximum(frames, (area + width * height - 1) // tf.maximum(width * height, 1))
  return width, height, frames


def _webp_frames(data, length):
  """The number of ANMF (animation frame) chunks of a RIFF WebP file."""
  def body(pos, frames):
    size = _le(data, pos + 4, 4)
    frame = tf.logical_and(_starts_with(data, pos, b"ANMF"), pos + 8 <= length)
    return pos + 8 + size + size % 2, frames + tf.cast(frame, tf.int64)

  _, frames = tf.while_loop(lambda pos, frames: pos < length, body,
                            (tf.constant(12, tf.int64), tf.constant(0, tf.int64)))
  return tf.maximum(frames, 1)


def _webp(data, length):
  lossy, lossless = _starts_with(data, 12, b"VP8 "), _starts_with(data, 12, b"VP8L")
  extended = _starts_with(data, 12, b"VP8X")
  width = tf.where(lossy, _le(data, 26, 2) % 2 ** 14,
                   tf.where(lossless, 1 + data[21] + (data[22] % 64) * 256,
                            tf.where(extended, 1 + _le(data, 24, 3), 0)))
  height = tf.where(lossy, _le(data, 28, 2) % 2 ** 14,
                    tf.where(lossless, 1 + data[22] // 64 + data[23] * 4 + (data[24] % 16) * 1024,
                             tf.where(extended, 1 + _le(data, 27, 3), 0)))
  animated = tf.logical_and(extended, tf.equal(data[20] // 2 % 2, 1))
  frames = tf.cond(animated, lambda: _webp_frames(data, length), lambda: tf.constant(1, tf.int64))
  return width, height, frames


#: The formats read here, by the `kind` code of `decoded_size` (0: none of them).
KINDS = ("unknown", "JPEG", "PNG", "GIF", "BMP", "WebP")
WEBP = KINDS.index("WebP")


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def decoded_size(image_bytes):
  """`(width, height, frames, kind)` int64 scalars: what the encoded image's
  header declares and its format (an index of `KINDS`); zero sizes where the
  header is cut short, kind 0 for bytes of no format read here."""
  data, length = _bytes(image_bytes)
  readers = [
      (tf.io.is_jpeg(image_bytes), lambda: _jpeg(image_bytes)),
      (_starts_with(data, 0, b"\x89PNG\r\n\x1a\n"), lambda: _png(data)),
      (tf.logical_or(_starts_with(data, 0, b"GIF87a"), _starts_with(data, 0, b"GIF89a")),
       lambda: _gif(data, length)),
      (_starts_with(data, 0, b"BM"), lambda: _bmp(data)),
      (tf.logical_and(_starts_with(data, 0, b"RIFF"), _starts_with(data, 8, b"WEBP")),
       lambda: _webp(data, length)),
  ]
  zero = tf.constant(0, tf.int64)
  out = (zero, zero, zero, zero)
  for kind, (is_kind, read) in reversed(list(enumerate(readers, start=1))):
    out = tf.cond(is_kind, lambda read=read, kind=kind: read() + (tf.constant(kind, tf.int64),),
                  lambda out=out: out)
  return out


#: Where the limit of an exported model is set (the end of its error message).
EXPORT_LIMIT = "max_image_pixels, set when the model is exported"


def check_decoded_size(image_bytes, max_pixels: int, limit_source: str = EXPORT_LIMIT):
  """`image_bytes` (a scalar tf.string), after checking in the graph that it
  is a JPEG, PNG, GIF, BMP or still WebP whose header declares at most
  `max_pixels` decoded pixels (all frames of an animated GIF together);
  otherwise an `InvalidArgumentError` names its format, size and the limit
  (and, in brackets, `limit_source`: where that limit is set).

  Animated WebP is refused by name: TF 2.21's decoder cannot return it as
  RGB ("WebP Animation must be 4 channel RGBA") and, asked for RGBA or any
  channels, corrupted the heap and killed the process when tried here
  (`tf.io.decode_webp` and `tf.io.decode_image(..., expand_animations=False)`
  on a 7-frame file from PIL: "double free or corruption").
  """
  width, height, frames, kind = decoded_size(image_bytes)
  pixels = width * height * frames
  check_format = tf.debugging.Assert(kind > 0, [FORMATS_MESSAGE], name="check_image_format")
  check_animation = tf.debugging.Assert(
      tf.logical_not(tf.logical_and(tf.equal(kind, WEBP), frames > 1)),
      [tf.strings.join(["animated WebP (", tf.strings.as_string(frames), " frames) is not "
                        "accepted: send one frame as a still image"])], name="check_image_animation")
  n = tf.strings.as_string
  message = tf.strings.join([
      tf.gather(KINDS, kind), " image of ", n(width), "x", n(height), " pixels",
      tf.where(frames > 1, tf.strings.join([" x ", n(frames), " frames"]), ""),
      " decodes to ", n(pixels), f" pixels, over the limit of {max_pixels} ({limit_source})"])
  check_size = tf.debugging.Assert(pixels <= max_pixels, [message], name="check_image_size")
  with tf.control_dependencies([check_format, check_animation, check_size]):
    return tf.identity(image_bytes)
