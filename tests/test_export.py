"""Shipping: SavedModel signatures in a fresh process, saved_model_cli, TFLite
parity (float32 / int8), builtin-ops-only AutoNL-S, atomic export, serving
robustness, and the export / predict tools."""

import io
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import autonl_tf
from autonl_tf.data import DataConfig, make_dataset
from autonl_tf.export import ExportError, export_saved_model, tflite
from autonl_tf.export import saved_model as sm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = "#! stem_stride=1 head_filters=32\nr1_k3_s11_e1_i8_o8\nr1_k3_s22_e3_i8_o16_se0.25_nonlocal0.5\n"
SIZE, CLASSES = 16, 4
NAMES = ["red panda", "tabby", "ship", "tench"]
DATA = DataConfig("synthetic", input_size=SIZE, num_classes=CLASSES, seed=0)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def run_tool(name, *args, timeout=300):
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", name), *args],
                        capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny LightNL network trained for a few steps (confident predictions,
  so that int8 agreement measures quantisation, not ties)."""
  keras.utils.set_random_seed(3)
  d = tmp_path_factory.mktemp("trained")
  arch = d / "tiny.txt"
  arch.write_text(ARCH)
  model = autonl_tf.build_model(str(arch), (SIZE, SIZE, 3), CLASSES)
  model.compile(keras.optimizers.Adam(3e-3),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
  train = make_dataset(DATA, "train", 32, training=True)
  model.fit(train, epochs=1, steps_per_epoch=60, verbose=0)
  path = str(d / "model.keras")
  model.save(path)
  return model, path


def held_out(n, split="test"):
  ds = make_dataset(DATA, split, n, training=False, normalize=False)
  images, labels = next(iter(ds))
  return images.numpy(), labels.numpy()


def image_files(directory):
  """A PNG (exact pixels) and a JPEG at the model size, and a larger PNG
  that preprocessing resizes."""
  rng = np.random.default_rng(5)
  files = {}
  for name, shape, fmt in [("a.png", (SIZE, SIZE), "PNG"), ("b.jpg", (SIZE, SIZE), "JPEG"),
                           ("c.png", (24, 20), "PNG")]:
    pixels = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    path = os.path.join(directory, name)
    Image.fromarray(pixels).save(path, fmt, quality=95)
    files[name] = path
  return files


def normalized(images):
  """ImageNet mean/std in NumPy, independent of the library's normalize."""
  return ((images - np.array([0.485, 0.456, 0.406]) * 255)
          / (np.array([0.229, 0.224, 0.225]) * 255)).astype(np.float32)


def keras_probs(model, images):
  logits = model(normalized(np.asarray(images, np.float32)), training=False).numpy()
  return tf.nn.softmax(logits).numpy()


def test_signatures_match_keras_in_a_fresh_process(trained, tmp_path):
  model, _ = trained
  path = export_saved_model(model, str(tmp_path / "export"), 3, class_names=NAMES)
  assert path == str(tmp_path / "export" / "3")
  assert sorted(os.listdir(tmp_path / "export")) == ["3"]
  files = image_files(str(tmp_path))
  images, _ = held_out(8)
  np.save(tmp_path / "images.npy", images)
  script = textwrap.dedent(f"""
      import json, sys, numpy as np, tensorflow as tf
      m = tf.saved_model.load({path!r})
      images = np.load({str(tmp_path / 'images.npy')!r})
      out = {{"sigs": sorted(m.signatures.keys())}}
      r = m.signatures["serving_default"](images=tf.constant(images))
      out["dense"] = r["probabilities"].numpy().tolist()
      out["dense_labels"] = [[x.decode() for x in row] for row in r["top_k_labels"].numpy()]
      out["dense_classes"] = r["top_k_classes"].numpy().tolist()
      files = {json.dumps(list(files.values()))}
      data = [open(f, "rb").read() for f in files]
      r = m.signatures["predict_images"](image_bytes=tf.constant(data))
      out["bytes"] = r["probabilities"].numpy().tolist()
      out["dtypes"] = {{k: v.dtype.name for k, v in r.items()}}
      print(json.dumps(out))
      """)
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                        timeout=300, env=ENV)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["sigs"] == ["predict_images", "serving_default"]
  assert out["dtypes"] == {"logits": "float32", "probabilities": "float32",
                           "top_k_classes": "int32", "top_k_scores": "float32",
                           "top_k_labels": "string"}
  ref = keras_probs(model, images)
  np.testing.assert_allclose(out["dense"], ref, atol=1e-5)
  order = np.argsort(-ref, axis=1, kind="stable")
  assert out["dense_classes"] == order[:, :CLASSES].tolist()  # top_k = min(5, classes)
  assert out["dense_labels"] == [[NAMES[i] for i in row] for row in order]
  # Bytes: PNGs decoded independently with PIL (exact); the 24x20 one is
  # resized bicubically to 16x16 as the eval pipeline does; the JPEG with
  # libjpeg's accurate DCT as TF (PIL's decoder may differ by a level).
  decoded = [np.asarray(Image.open(f).convert("RGB"), np.float32) for f in files.values()]
  resized = tf.clip_by_value(tf.image.resize(decoded[2], [SIZE, SIZE], "bicubic"), 0, 255).numpy()
  jpeg = tf.io.decode_jpeg(open(files["b.jpg"], "rb").read(), dct_method="INTEGER_ACCURATE")
  ref_bytes = keras_probs(model, np.stack([decoded[0], tf.cast(jpeg, tf.float32).numpy(), resized]))
  np.testing.assert_allclose(out["bytes"], ref_bytes, atol=1e-5)
  assert np.abs(np.asarray(decoded[1]) - jpeg.numpy()).max() <= 8  # it is the same JPEG


def test_saved_model_cli_run_with_input_exprs(trained, tmp_path):
  model, _ = trained
  path = export_saved_model(model, str(tmp_path / "e"), 1)
  images = np.round(held_out(2)[0])
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  show = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True,
                        timeout=120, env=ENV)
  assert show.returncode == 0, show.stderr[-2000:]
  assert "signature_def['serving_default']" in show.stdout
  assert "signature_def['predict_images']" in show.stdout
  assert "inputs['image_bytes']" in show.stdout and "DT_STRING" in show.stdout
  # Declared without a shape so that the in-graph rank check runs.
  assert "inputs['images'] tensor_info:\n        dtype: DT_FLOAT\n        shape: unknown_rank" \
      in show.stdout, show.stdout
  out_dir = tmp_path / "out"
  proc = subprocess.run(
      [cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
       "--input_exprs", f"images={images.tolist()}", "--outdir", str(out_dir)],
      capture_output=True, text=True, timeout=300, env=ENV)
  assert proc.returncode == 0, proc.stderr[-3000:]
  np.testing.assert_allclose(np.load(out_dir / "probabilities.npy"), keras_probs(model, images),
                             atol=1e-5)
  # The README's command (issue 18, point 7: its np.zeros(...) input_exprs is
  # "not a valid python literal" on this TF): a zeros image from a .npy file.
  np.save(tmp_path / "x.npy", np.zeros((1, SIZE, SIZE, 3), np.float32))
  proc = subprocess.run(
      [cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
       "--inputs", f"images={tmp_path / 'x.npy'}", "--outdir", str(tmp_path / "out2")],
      capture_output=True, text=True, timeout=300, env=ENV)
  assert proc.returncode == 0, proc.stderr[-3000:]
  np.testing.assert_allclose(np.load(tmp_path / "out2" / "probabilities.npy"),
                             keras_probs(model, np.zeros((1, SIZE, SIZE, 3))), atol=1e-5)


HOSTILE = {  # request -> what the error must say (None: must succeed)
    "rank 3": ("np.zeros([S, S, 3])", "of shape [batch, S, S, 3], got shape] [S S 3]"),
    "rank 5": ("np.zeros([1, 1, S, S, 3])", "got shape] [1 1 S S 3]"),
    "scalar": ("np.float32(3)", "got shape] []"),
    "smaller": ("np.zeros([1, S - 1, S - 1, 3])", "got shape] [1 S-1 S-1 3]"),
    "larger": ("np.zeros([1, 2 * S, 2 * S, 3])", "got shape] [1 2S 2S 3]"),
    "1 channel": ("np.zeros([1, S, S, 1])", "got shape] [1 S S 1]"),
    "4 channels": ("np.zeros([1, S, S, 4])", "got shape] [1 S S 4]"),
    "1e6": ("np.full([1, S, S, 3], 1e6)", "finite pixel values in [0, 255]; values outside:] [3S2]"),
    "1e30": ("np.full([1, S, S, 3], 1e30)", "finite pixel values in [0, 255]; values outside:] [3S2]"),
    "NaN": ("np.where(np.arange(3 * S * S).reshape(1, S, S, 3) == 7, np.nan, 9.)",
            "values outside:] [1] [e.g.] [nan]"),
    "negative": ("np.full([2, S, S, 3], -1.)", "values outside:] [6S2]"),
    "int32": ("np.zeros([1, S, S, 3], np.int32)", "expected to be a float tensor but is a int32"),
}


def test_hostile_requests_fail_alone_and_the_server_survives(trained, tmp_path):
  """Issue 18, points 1-2: in a fresh process (a wrong-rank tensor used to
  abort it in oneDNN), every malformed request fails with an
  InvalidArgumentError naming the expected shape or range, an empty batch
  gets empty outputs, and a good request afterwards still works."""
  model, _ = trained
  path = export_saved_model(model, str(tmp_path / "e"), 1, class_names=NAMES)
  images = np.round(held_out(2)[0])
  np.save(tmp_path / "good.npy", images)
  requests = {k: v[0] for k, v in HOSTILE.items()}
  script = textwrap.dedent(f"""
      import json, numpy as np, tensorflow as tf
      S = {SIZE}
      serve = tf.saved_model.load({path!r}).signatures["serving_default"]
      out = {{}}
      for name, expr in {requests!r}.items():
        x = np.asarray(eval(expr))
        try:
          serve(images=tf.constant(x, tf.float32 if x.dtype.kind == "f" else None))
          out[name] = "served"
        except tf.errors.InvalidArgumentError as e:
          out[name] = e.message
      empty = serve(images=tf.zeros([0, S, S, 3]))
      out["empty"] = {{k: [v.shape.as_list(), v.dtype.name] for k, v in empty.items()}}
      out["good"] = serve(images=tf.constant(np.load({str(tmp_path / 'good.npy')!r})))[
          "probabilities"].numpy().tolist()
      print(json.dumps(out))
      """)
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                        timeout=300, env=ENV)
  assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])  # -6 was the abort
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  s = SIZE
  for name, (_, message) in HOSTILE.items():
    message = (message.replace("S-1", str(s - 1)).replace("2S", str(2 * s))
               .replace("3S2", str(3 * s * s)).replace("6S2", str(6 * s * s))
               .replace("S", str(s)))
    assert message in out[name], (name, out[name])
  assert out["empty"] == {"logits": [[0, CLASSES], "float32"],
                          "probabilities": [[0, CLASSES], "float32"],
                          "top_k_classes": [[0, CLASSES], "int32"],
                          "top_k_scores": [[0, CLASSES], "float32"],
                          "top_k_labels": [[0, CLASSES], "string"]}
  np.testing.assert_allclose(out["good"], keras_probs(model, images), atol=1e-5)


def test_tflite_model_checks_requests_like_the_signature(trained, tmp_path):
  model, _ = trained
  runner = tflite.TFLiteModel(content=tflite.convert(model, "float32"))
  for images, message in [
      (np.zeros([SIZE, SIZE, 3]), f"of shape [batch, {SIZE}, {SIZE}, 3], got shape [{SIZE}, {SIZE}, 3]"),
      (np.zeros([1, SIZE, SIZE, 1]), f"got shape [1, {SIZE}, {SIZE}, 1]"),
      (np.full([1, SIZE, SIZE, 3], np.nan), f"in [0, 255]; {3 * SIZE * SIZE} values outside, e.g. [nan"),
      (np.full([1, SIZE, SIZE, 3], 1e30), "values outside, e.g. [1.0000000150474662e+30"),
  ]:
    with pytest.raises(ExportError) as e:
      runner(images)
    assert message in str(e.value), str(e.value)
  assert runner(np.zeros([0, SIZE, SIZE, 3])).shape == (0, CLASSES)


def test_corrupt_request_fails_alone_and_serving_continues(trained, tmp_path):
  model, _ = trained
  loaded = tf.saved_model.load(export_saved_model(model, str(tmp_path / "e"), 1))
  serve = loaded.signatures["predict_images"]
  good = open(image_files(str(tmp_path))["a.png"], "rb").read()
  for bad in [b"this is not an image", good[:40], b""]:
    with pytest.raises(tf.errors.InvalidArgumentError):
      serve(image_bytes=tf.constant([bad]))
  first = serve(image_bytes=tf.constant([good]))["probabilities"].numpy()
  pixels = np.asarray(Image.open(io.BytesIO(good)), np.float32)[None]
  np.testing.assert_allclose(first, keras_probs(model, pixels), atol=1e-5)


def test_failed_export_leaves_nothing(trained, tmp_path, monkeypatch):
  model, _ = trained
  export_dir = tmp_path / "e"

  def half_write(self, filepath, *args, **kwargs):
    os.makedirs(os.path.join(filepath, "variables"))
    open(os.path.join(filepath, "saved_model.pb"), "wb").write(b"partial")
    raise OSError("disk full (simulated)")

  archive_type = type(keras.export.ExportArchive())
  monkeypatch.setattr(archive_type, "write_out", half_write)
  with pytest.raises(OSError, match="simulated"):
    export_saved_model(model, str(export_dir), 1)
  assert os.listdir(export_dir) == []  # no 1/, no temp dir
  monkeypatch.undo()
  export_saved_model(model, str(export_dir), 1)
  with pytest.raises(ExportError, match="already exists"):
    export_saved_model(model, str(export_dir), 1)
  with pytest.raises(ExportError, match="3 class names for a model with 4 outputs"):
    export_saved_model(model, str(export_dir), 2, class_names=NAMES[:3])
  assert sorted(os.listdir(export_dir)) == ["1"]


def test_overwrite_keeps_the_old_version_until_the_new_one_is_in_place(trained, tmp_path,
                                                                       monkeypatch):
  model, _ = trained
  export_dir = str(tmp_path / "e")
  target = export_saved_model(model, export_dir, 1, class_names=NAMES)
  pb = open(os.path.join(target, "saved_model.pb"), "rb").read()

  rename = os.rename

  def failing_swap(src, dst):  # moving the new version into place fails
    if dst == target and src.endswith("model"):
      raise OSError("rename refused (simulated)")
    return rename(src, dst)

  monkeypatch.setattr(os, "rename", failing_swap)
  with pytest.raises(OSError, match="simulated"):
    export_saved_model(model, export_dir, 1, overwrite=True)
  monkeypatch.undo()
  assert sorted(os.listdir(export_dir)) == ["1"]  # the old one is back, no temp dir
  assert open(os.path.join(target, "saved_model.pb"), "rb").read() == pb
  assert sm.saved_model_labels(target) == NAMES

  export_saved_model(model, export_dir, 1, overwrite=True)  # without class names this time
  assert sorted(os.listdir(export_dir)) == ["1"]
  assert sm.saved_model_labels(target) is None


def test_tflite_float32_and_int8_parity(trained, tmp_path):
  model, _ = trained
  images, labels = held_out(100)
  representative = held_out(100, "train")[0]
  f32 = tflite.export_tflite(model, str(tmp_path / "m_float32.tflite"), "float32", images, "test")
  logits = model.predict(normalized(images), verbose=0)
  assert f32["max_abs_logit_diff"] < 1e-4 * max(1.0, np.abs(logits).max())
  assert f32["top1_agreement"] == 1.0 and f32["builtin_only"]
  int8 = tflite.export_tflite(model, str(tmp_path / "m_int8.tflite"), "int8", images, "test",
                              representative_images=representative, representative_source="train")
  assert int8["top1_agreement"] >= 0.95, int8
  assert (logits.argmax(-1) == labels).mean() > 0.9  # the model did learn: agreement is meaningful
  saved = json.loads((tmp_path / "m_int8.parity.json").read_text())
  assert saved["top1_agreement"] == int8["top1_agreement"] and saved["representative_images"] == 100
  # An independent run of the written file with the LiteRT interpreter.
  from ai_edge_litert.interpreter import Interpreter
  interp = Interpreter(model_path=str(tmp_path / "m_int8.tflite"))
  interp.allocate_tensors()
  inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
  assert inp["dtype"] == np.uint8 and out["dtype"] == np.int8
  agree = 0
  for image, ref in zip(images[:20], logits[:20]):
    interp.set_tensor(inp["index"], np.round(image)[None].astype(np.uint8))
    interp.invoke()
    agree += int(interp.get_tensor(out["index"])[0].argmax() == ref.argmax())
  assert agree >= 19


def test_tflite_images_default_to_the_training_runs_dataset(trained, tmp_path):
  """Without --dataset, parity and int8 calibration use the dataset named in
  the training run's config.json beside the model (not random pixels)."""
  import dataclasses
  import shutil
  from autonl_tf.export import workflow
  _, path = trained
  run = tmp_path / "run"
  run.mkdir()
  shutil.copy(path, run / "final.keras")
  (run / "config.json").write_text(json.dumps({"data": dataclasses.asdict(DATA)}))
  out = workflow.run_export(workflow.ExportRequest(
      model=str(run / "final.keras"), export_dir=str(tmp_path / "e"), tflite=["int8"],
      representative_images=16, parity_images=16), log=lambda _: None)
  _, report = out["tflite"]["int8"]
  assert report["parity_images_from"] == "synthetic test"
  assert report["representative_images_from"] == "synthetic train"
  assert report["images"] == report["representative_images"] == 16
  with pytest.raises(ExportError, match="needs --dataset"):  # no run config: nothing to use
    workflow.run_export(workflow.ExportRequest(model=path, export_dir=str(tmp_path / "f"),
                                               tflite=["int8"]), log=lambda _: None)


def nan_model_run(directory):
  """A training run's directory whose final.keras has NaN logits everywhere
  (its config.json names the synthetic dataset)."""
  import dataclasses
  model = autonl_tf.build_model(ARCH.splitlines(), (SIZE, SIZE, 3), CLASSES)
  model.get_layer("logits").bias.assign(np.full(CLASSES, np.nan, np.float32))
  os.makedirs(directory, exist_ok=True)
  model.save(os.path.join(directory, "final.keras"))
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump({"data": dataclasses.asdict(DATA)}, f)
  return model, os.path.join(directory, "final.keras")


def test_non_finite_outputs_are_refused_before_any_converter(tmp_path, monkeypatch):
  """Issue 18, point 5: the int8 converter segfaulted on NaN calibration
  logits and the float32 parity report printed nan."""
  from autonl_tf.export import workflow
  model, path = nan_model_run(str(tmp_path / "run"))

  def no_converter(*args, **kwargs):
    raise AssertionError("the converter ran")

  monkeypatch.setattr(tflite, "convert", no_converter)
  e = tmp_path / "e"
  with pytest.raises(ExportError) as error:
    workflow.run_export(workflow.ExportRequest(
        model=path, export_dir=str(e), tflite=["float32", "int8"], representative_images=8,
        parity_images=6), log=lambda _: None)
  assert str(error.value) == (
      "the model's logits are NaN or infinite on 6 of 6 parity images (synthetic test) and on "
      "8 of 8 calibration images (synthetic train): refusing to export TFLite float32, int8 "
      "(nothing was written)")
  assert not e.exists()
  images = held_out(4)[0]
  with pytest.raises(ExportError, match="on 4 of 4 parity images .here.: refusing to export "
                     "TFLite float16"):
    tflite.export_tflite(model, str(e / "m.tflite"), "float16", images, "here")
  assert not e.exists()
  # A TFLite model with non-finite logits where Keras' are finite: no report.
  finite = autonl_tf.build_model(ARCH.splitlines(), (SIZE, SIZE, 3), CLASSES)
  half_nan = lambda x: np.where(np.arange(len(x))[:, None] % 2, np.nan, np.zeros((len(x), CLASSES)))
  with pytest.raises(ExportError, match="TFLite dynamic model's logits are NaN or infinite on 2 "
                     "of 4 parity images"):
    tflite.parity(finite, half_nan, images, "dynamic")


def test_exports_check_before_they_write_and_clean_up_after_killed_ones(trained, tmp_path):
  """Issue 18, point 7: a refused --tflite=float16,float32 (float32 exists)
  wrote float16 and rewrote labels.txt first; killed exports left .N.tmp-*
  directories that no later export removed."""
  from autonl_tf.export import workflow
  model, path = trained
  e = tmp_path / "e"
  e.mkdir()
  (e / "model_float32.tflite").write_bytes(b"old")
  (e / "labels.txt").write_text("old\n")
  labels = tmp_path / "names.txt"
  labels.write_text("".join(n + "\n" for n in NAMES))
  with pytest.raises(ExportError, match=f"^{e}/model_float32.tflite already exists: pass "
                     "--overwrite to replace, or leave out those variants; nothing was written$"):
    workflow.run_export(workflow.ExportRequest(
        model=path, export_dir=str(e), tflite=["float16", "float32"], labels=str(labels),
        parity_images=4), log=lambda _: None)
  assert sorted(os.listdir(e)) == ["labels.txt", "model_float32.tflite"]
  assert (e / "labels.txt").read_text() == "old\n"
  # What killed exports leave: a dead process's, an old unnamed one, and a
  # TFLite temporary; a running export's (this process) is kept.
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True).stdout.strip()
  stale = [f".1.tmp-{dead}-abc", ".2.tmp-k2j3h4g5"]
  for name in stale + [f".3.tmp-{os.getpid()}-live"]:
    (e / name / "model").mkdir(parents=True)
  (e / f"model_int8.tflite.tmp-{dead}").write_bytes(b"partial")
  export_saved_model(model, str(e), 1)
  assert sorted(os.listdir(e)) == [f".3.tmp-{os.getpid()}-live", "1", "labels.txt",
                                   "model_float32.tflite"]


def test_autonl_s_converts_to_builtin_ops_only():
  model = autonl_tf.build_model("autonl-s", (64, 64, 3), 10)
  ops = tflite.op_counts(tflite.convert(model, "float32"))
  assert tflite.non_builtin_ops(ops) == []
  # LightNL's two products per block: 7 LightNL blocks in AutoNL-S.
  assert ops["BATCH_MATMUL"] == 14
  assert ops["CONV_2D"] > 0 and ops["DEPTHWISE_CONV_2D"] > 0


def test_select_tf_ops_are_refused():
  inputs = keras.Input((8, 8, 3))
  x = keras.layers.Lambda(lambda t: tf.linalg.svd(tf.reshape(t, [-1, 8, 24]), compute_uv=False))(inputs)
  model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
  with pytest.raises(ExportError, match="float32 conversion failed"):
    tflite.convert(model, "float32")


def test_export_and_predict_tools(trained, tmp_path):
  _, model_path = trained
  files = image_files(str(tmp_path))
  bad = tmp_path / "bad.jpg"
  bad.write_bytes(b"not an image")
  labels = tmp_path / "names.txt"
  labels.write_text("".join(n + "\n" for n in NAMES))
  e = tmp_path / "e"
  proc = run_tool("export.py", f"--model={model_path}", f"--export_dir={e}", "--version=1",
                  f"--labels={labels}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "wrote SavedModel" in proc.stdout and (e / "1" / "assets" / "labels.txt").exists()
  proc = run_tool("export.py", f"--model={model_path}", f"--export_dir={e}", "--tflite=dynamic",
                  "--dataset=synthetic", f"--num_classes={CLASSES}", "--parity_images=20",
                  f"--labels={labels}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads((e / "model_dynamic.parity.json").read_text())
  assert report["images"] == 20 and report["builtin_only"] and "top-1 agreement" in proc.stdout
  assert (e / "labels.txt").read_text().splitlines() == NAMES
  # Same image through both formats: same top-1 label.
  lines = {}
  for m in [e / "1", e / "model_dynamic.tflite"]:
    proc = run_tool("predict.py", f"--model={m}", "--format=json", *files.values(), str(bad))
    assert proc.returncode == 1, proc.stderr[-3000:]  # one file failed, the others printed
    results = json.loads(proc.stdout)
    assert [r["image"] for r in results] == [*files.values(), str(bad)]
    assert "error" in results[-1] and "Unknown image file format" in results[-1]["error"]
    assert all(len(r["top_k"]) == CLASSES for r in results[:-1])
    lines[m.name] = [r["top_k"][0]["label"] for r in results[:-1]]
    assert all(l in NAMES for l in lines[m.name])
  assert lines["1"] == lines["model_dynamic.tflite"]
  # Errors name the problem.
  proc = run_tool("export.py", f"--model={model_path}", f"--export_dir={e}", "--version=1")
  assert proc.returncode == 2 and "already exists" in proc.stderr
  proc = run_tool("export.py", f"--model={model_path}", f"--export_dir={e}", "--tflite=int4")
  assert proc.returncode == 2 and "unknown TFLite variant 'int4'" in proc.stderr
  proc = run_tool("export.py", f"--model={model_path}", f"--export_dir={e}", "--tflite=int8")
  assert proc.returncode == 2 and "needs --dataset" in proc.stderr
  proc = run_tool("predict.py", f"--model={tmp_path / 'missing'}", files["a.png"])
  assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_eval_loader_runs_tflite(trained, tmp_path):
  from autonl_tf.export.loading import load_for_inference
  model, _ = trained
  tflite.export_tflite(model, str(tmp_path / "m.tflite"), "float32", held_out(4)[0], "test")
  predict, raw, what = load_for_inference(str(tmp_path / "m.tflite"))
  images = held_out(4)[0]
  assert raw and what.startswith("TFLite")
  np.testing.assert_allclose(predict(images), model.predict(normalized(images), verbose=0),
                             atol=1e-4)
