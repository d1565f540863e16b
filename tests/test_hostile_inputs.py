"""Hostile inputs, second round: decompression bombs refused before decoding
(the header reader checked against PIL on every format), foreign models
refused by every tool in one line, and ten more probes of the served model
and the tools."""

import io
import os
import resource
import struct
import subprocess
import sys
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import autonl_tf
from autonl_tf.data import decoded_size
from autonl_tf.export import ExportError, export_saved_model, tflite
from autonl_tf.export import loading
from autonl_tf.export.classify import Classifier
from autonl_tf.export.workflow import ExportRequest, run_export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = "#! stem_stride=1 head_filters=16\nr1_k3_s11_e1_i8_o8\nr1_k3_s22_e3_i8_o16_nonlocal0.5\n"
SIZE, CLASSES = 16, 4
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
LIMIT = decoded_size.DEFAULT_MAX_PIXELS


def run_tool(name, *args, timeout=300):
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", name), *args],
                        capture_output=True, text=True, timeout=timeout, env=ENV)


def one_line_error(proc, *words):
  """The tool failed with exit 2 and one `error:` line holding `words`."""
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert proc.returncode == 2 and len(errors) == 1, (proc.returncode, proc.stderr[-2000:])
  assert "Traceback" not in proc.stderr and all(w in errors[0] for w in words), errors


def png_bomb(width, height):
  """A valid 1-bit grayscale PNG of zeros: 48 kB for 20000x20000 pixels,
  1.2 GB once decoded to RGB."""
  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))
  rows = b"\0" * ((1 + (width + 7) // 8) * height)
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
          + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def encode(pixels, fmt, **options):
  out = io.BytesIO()
  Image.fromarray(pixels).save(out, fmt, **options)
  return out.getvalue()


def animation(fmt, frames, shape=(20, 30)):
  rng = np.random.default_rng(2)
  images = [Image.fromarray(rng.integers(0, 256, shape + (3,), dtype=np.uint8))
            for _ in range(frames)]
  out = io.BytesIO()
  images[0].save(out, fmt, save_all=True, append_images=images[1:])
  return out.getvalue()


def refusal(signature, data):
  """The message of the InvalidArgumentError a request of `data` fails with."""
  with pytest.raises(tf.errors.InvalidArgumentError) as e:
    signature(image_bytes=tf.constant(data))
  return e.value.message


@pytest.fixture(scope="module")
def served(tmp_path_factory):
  """A tiny network as a .keras file, a .tflite file and two SavedModels:
  the default decoded-size limit and one of 1000 pixels."""
  d = tmp_path_factory.mktemp("served")
  (d / "arch.txt").write_text(ARCH)
  model = autonl_tf.build_model(str(d / "arch.txt"), (SIZE, SIZE, 3), CLASSES)
  model.save(str(d / "model.keras"))
  default = export_saved_model(model, str(d / "e"), 1)
  small = export_saved_model(model, str(d / "e"), 2, max_image_pixels=1000)
  tflite.export_tflite(model, str(d / "m.tflite"), "float32",
                       np.zeros((2, SIZE, SIZE, 3), np.float32), "zeros")
  signature = lambda path: tf.saved_model.load(path).signatures["predict_images"]
  return dict(dir=d, model=model, default=default, small=small,
              serve=signature(default), serve_small=signature(small))


# --- The header reader against PIL ---------------------------------------------------------

@pytest.mark.parametrize("fmt,options", [("PNG", {}), ("JPEG", {}), ("GIF", {}), ("BMP", {}),
                                         ("WEBP", {}), ("WEBP", {"lossless": True})])
def test_decoded_size_reads_each_format_as_pil_does(fmt, options):
  rng = np.random.default_rng(len(fmt))
  for _ in range(3):
    height, width = rng.integers(1, 300, 2)
    data = encode(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), fmt, **options)
    got = [int(v) for v in decoded_size.decoded_size(data)]
    pil = Image.open(io.BytesIO(data))
    assert got == [*pil.size, 1, decoded_size.KINDS.index(fmt.replace("WEBP", "WebP"))], got


def test_decoded_size_counts_animation_frames_as_pil_does():
  for fmt, kind in [("GIF", "GIF"), ("WEBP", "WebP")]:
    for frames in (2, 7):
      data = animation(fmt, frames)
      assert Image.open(io.BytesIO(data)).n_frames == frames
      assert [int(v) for v in decoded_size.decoded_size(data)] == [
          30, 20, frames, decoded_size.KINDS.index(kind)]


def test_decoded_size_of_a_top_down_bmp_and_of_cut_or_foreign_bytes():
  data = bytearray(encode(np.zeros((13, 17, 3), np.uint8), "BMP"))
  data[22:26] = struct.pack("<i", -13)  # a top-down bitmap: negative height
  assert Image.open(io.BytesIO(bytes(data))).size == (17, 13)
  assert [int(v) for v in decoded_size.decoded_size(bytes(data))][:2] == [17, 13]
  png = encode(np.zeros((13, 17, 3), np.uint8), "PNG")
  assert [int(v) for v in decoded_size.decoded_size(png[:14])] == [0, 0, 1, 2]  # IHDR cut off
  for junk in [b"", b"hello", b"\0" * 100]:
    assert [int(v) for v in decoded_size.decoded_size(junk)] == [0, 0, 0, 0]


# --- Decompression bombs ---------------------------------------------------------------

def test_bomb_png_is_refused_within_bounded_memory(served, tmp_path):
  """Issue 39, point 1: the 20000x20000 PNG (48 kB) used to be decoded in full
  (6.9 GB peak); now it is refused from its header, the process's peak memory
  grows by under 200 MB, and the next request is served."""
  bomb = png_bomb(20000, 20000)
  assert len(bomb) < 60_000
  good = encode(np.zeros((SIZE, SIZE, 3), np.uint8), "PNG")
  serve = served["serve"]
  serve(image_bytes=tf.constant([good]))  # warm: traced, allocated
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  message = refusal(serve, [bomb])
  grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
  assert grown_mb < 200, grown_mb
  assert (f"PNG image of 20000x20000 pixels decodes to 400000000 pixels, over the limit of "
          f"{LIMIT} (max_image_pixels, set when the model is exported)") in message
  # A batch holding one bomb fails as a whole; the server goes on.
  refusal(serve, [good, bomb])
  assert serve(image_bytes=tf.constant([good]))["probabilities"].shape == (1, CLASSES)
  # The same limit host-side for .tflite (tools/predict.py), named by its flag.
  (tmp_path / "bomb.png").write_bytes(bomb)
  result = Classifier(str(served["dir"] / "m.tflite"))([str(tmp_path / "bomb.png")])[0]
  assert result.error == (f"refused (PNG image of 20000x20000 pixels decodes to 400000000 "
                          f"pixels, over the limit of {LIMIT} (--max_image_pixels))")
  result = Classifier(str(served["dir"] / "m.tflite"), max_image_pixels=100)(
      [str(served["dir"] / "arch.txt")])[0]
  assert "Unknown image file format: expected JPEG, PNG, GIF, BMP or WebP" in result.error


def test_the_limit_is_set_at_export(served, tmp_path):
  """The 1000-pixel export refuses a 40x30 image that the default serves,
  and serves a 40x25 one (exactly 1000 pixels)."""
  over = encode(np.full((30, 40, 3), 90, np.uint8), "PNG")
  at = encode(np.full((25, 40, 3), 90, np.uint8), "JPEG")
  assert served["serve"](image_bytes=tf.constant([over]))["logits"].shape == (1, CLASSES)
  assert "PNG image of 40x30 pixels decodes to 1200 pixels, over the limit of 1000" in refusal(
      served["serve_small"], [over])
  assert served["serve_small"](image_bytes=tf.constant([at]))["logits"].shape == (1, CLASSES)
  with pytest.raises(ExportError, match="max_image_pixels must be a positive"):
    export_saved_model(served["model"], str(tmp_path / "e"), 1, max_image_pixels=0)
  proc = run_tool("export.py", f"--model={served['dir'] / 'model.keras'}",
                  f"--export_dir={tmp_path / 'x'}", "--max_image_pixels=1000")
  assert proc.returncode == 0, proc.stderr[-2000:]
  serve = tf.saved_model.load(str(tmp_path / "x" / "1")).signatures["predict_images"]
  assert "over the limit of 1000 " in refusal(serve, [over])


# --- Foreign models ----------------------------------------------------------------------

def test_foreign_models_are_refused_in_one_line(served, tmp_path):
  """Issue 39, point 2: a Keras Sequential (8,) -> Dense(3) as a .keras file
  (export, eval), as a .tflite file (predict) and a foreign SavedModel
  (eval, predict): one `error:` line each, exit 2, nothing written."""
  foreign = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
  path = str(tmp_path / "dense.keras")
  foreign.save(path)
  out = tmp_path / "e"
  one_line_error(run_tool("export.py", f"--model={path}", f"--export_dir={out}"),
                 "input shape (None, 8)", "is not an image classifier")
  assert not out.exists()
  one_line_error(run_tool("eval.py", f"--model={path}", "--dataset=synthetic",
                          f"--input_size={SIZE}", f"--num_classes={CLASSES}"),
                 "dense.keras", "is not an image classifier")
  flat = tf.lite.TFLiteConverter.from_keras_model(foreign).convert()
  (tmp_path / "dense.tflite").write_bytes(flat)
  image = tmp_path / "a.png"
  image.write_bytes(encode(np.zeros((SIZE, SIZE, 3), np.uint8), "PNG"))
  one_line_error(run_tool("predict.py", f"--model={tmp_path / 'dense.tflite'}", str(image)),
                 "takes [[1, 8]]", "is not an image classifier")

  class Module(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    def serve(self, x):
      return {"y": x * 2}

  module = Module()
  tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
  with pytest.raises(loading.ModelLoadError, match=r"not written by tools/export.py: its "
                     r"serving_default takes \['x'\] and returns \['y'\]"):
    loading.load_for_inference(str(tmp_path / "sm"))
  with pytest.raises(ExportError, match="has no predict_images signature"):
    Classifier(str(tmp_path / "sm"))


@pytest.mark.parametrize("build,words", [
    (lambda: keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(3, 1)]),
     "output shape (None, 8, 8, 3) is not one [batch, classes]"),
    (lambda: keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                               keras.layers.Dense(3)]),
     "input shape (None, 8, 8, 1) is not one fixed [batch, H, H, 3]"),
    (lambda: keras.Sequential([keras.Input((8, 6, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(3)]),
     "input shape (None, 8, 6, 3)"),
    (lambda: keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(1)]),
     "of at least 2 logits"),
    (lambda: keras.Sequential([keras.layers.Dense(3)]), "has no defined input"),
])
def test_export_names_what_is_not_a_classifier(build, words, tmp_path):
  with pytest.raises(ExportError) as e:
    export_saved_model(build(), str(tmp_path / "e"))
  assert words in str(e.value) and "is not an image classifier" in str(e.value), str(e.value)
  assert not (tmp_path / "e").exists()


# --- Ten more probes -------------------------------------------------------------------

def test_probe_1_a_million_empty_strings(served):
  message = refusal(served["serve"], [b""] * 1_000_000)
  assert "Unknown image file format: expected JPEG, PNG, GIF, BMP or WebP" in message


def test_probe_2_a_jpeg_declaring_60000_pixels_square_with_little_data(served, monkeypatch):
  data = bytearray(encode(np.zeros((8, 8, 3), np.uint8), "JPEG"))
  sof = data.index(b"\xff\xc0")  # SOF0: length, precision, height, width
  data[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # PIL's own bomb guard
  assert Image.open(io.BytesIO(bytes(data))).size == (60000, 60000)
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  assert "JPEG image of 60000x60000 pixels decodes to 3600000000 pixels" in refusal(
      served["serve"], [bytes(data)])
  assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024 < 200


def test_probe_3_an_animated_gif_counts_all_its_frames(served):
  """7 frames of 30x20: 4200 pixels over a 1000-pixel limit though each
  frame is 600; one such frame alone is served."""
  assert ("GIF image of 30x20 pixels x 7 frames decodes to 4200 pixels, over the limit of 1000"
          in refusal(served["serve_small"], [animation("GIF", 7)]))
  out = served["serve_small"](image_bytes=tf.constant([animation("GIF", 1)]))
  assert out["logits"].shape == (1, CLASSES)


def test_probe_4_an_animated_webp_is_refused_before_the_decoder(served):
  """TF 2.21's WebP decoder corrupts the heap on animated files (see
  `decoded_size.check_decoded_size`); the signature must refuse them first."""
  assert ("animated WebP (3 frames) is not accepted: send one frame as a still image"
          in refusal(served["serve"], [animation("WEBP", 3)]))
  still = encode(np.zeros((20, 30, 3), np.uint8), "WEBP")
  assert served["serve"](image_bytes=tf.constant([still]))["logits"].shape == (1, CLASSES)


def test_probe_5_a_bmp_declaring_a_huge_top_down_size(served):
  data = bytearray(encode(np.zeros((4, 4, 3), np.uint8), "BMP"))
  data[18:26] = struct.pack("<ii", 100000, -100000)
  assert "BMP image of 100000x100000 pixels" in refusal(served["serve"], [bytes(data)])


def test_probe_6_endless_files_are_not_read(served, tmp_path):
  """/dev/zero and a FIFO (no writer) would block predict forever."""
  fifo = tmp_path / "fifo.png"
  os.mkfifo(fifo)
  results = Classifier(served["default"])(["/dev/zero", str(fifo), str(tmp_path)])
  assert [r.error for r in results] == ["not a regular file"] * 3


def test_probe_7_a_saved_model_whose_variables_are_a_symlink_loop(served, tmp_path):
  import shutil
  copy = tmp_path / "1"
  shutil.copytree(served["default"], copy)
  shutil.rmtree(copy / "variables")
  os.symlink("variables", copy / "variables")  # itself: ELOOP on every open
  for load in (loading.load_for_inference, Classifier):
    with pytest.raises(ValueError, match=f"cannot load SavedModel {copy}"):
      load(str(copy))


def test_probe_8_unicode_and_overlong_paths(served, tmp_path):
  image = tmp_path / "chat_ünïcødé_猫.png"
  image.write_bytes(encode(np.zeros((SIZE, SIZE, 3), np.uint8), "PNG"))
  long = str(tmp_path / ("x" * 300)) + ".png"
  deep = "/".join(["d" * 200] * 30) + ".png"
  results = Classifier(served["default"])([str(image), long, deep])
  assert results[0].error is None and len(results[0].classes) == CLASSES
  assert [r.error for r in results[1:]] == ["cannot read: File name too long"] * 2
  out = tmp_path / "exportés_模型"
  assert export_saved_model(served["model"], str(out), 1).endswith("exportés_模型/1")


def test_probe_9_an_arch_file_of_one_10_mb_line(tmp_path):
  arch = tmp_path / "huge.txt"
  arch.write_text("r1_k3_s11_e1_i8_o8" * 600_000 + "\n")
  one_line_error(run_tool("profile.py", f"--arch={arch}", timeout=60),
                 "huge.txt: line 1: bad token")


def test_probe_10_garbage_model_and_labels_files(served, tmp_path):
  junk = tmp_path / "junk.tflite"
  junk.write_bytes(np.random.default_rng(0).bytes(3000))
  for load in (loading.load_for_inference, Classifier):
    with pytest.raises(ExportError, match=f"cannot load TFLite model {junk}: "):
      load(str(junk))
  labels = tmp_path / "labels.txt"
  labels.write_bytes(b"cat\n\xff\xfedog\n")
  out = tmp_path / "e"
  with pytest.raises(ExportError, match=f"labels file {labels} is not UTF-8 text"):
    run_export(ExportRequest(model=str(served["dir"] / "model.keras"), export_dir=str(out),
                             labels=str(labels)), log=lambda _: None)
  assert not out.exists()
