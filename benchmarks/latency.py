"""CPU latency of AutoNL-S / AutoNL-L vs keras.applications MobileNetV2 and
MobileNetV3-Large (random weights) as Keras, SavedModel and TFLite float32,
MACs beside each. Target: AutoNL-S no slower than MobileNetV2 in TFLite;
when it is slower (or with --profile), AutoNL-S variants without LightNL /
SE and the swish MobileNetV2 preset show which ops cost.

Every model is served the same way: a function of 0-255 float images that
applies the model's own preprocessing, exported with `keras.export.ExportArchive`
(dynamic batch), reloaded with `tf.saved_model.load`, converted to TFLite
(builtin ops) from that SavedModel and run with the LiteRT interpreter, the
input resized to each batch size, the same number of threads for all.

  python benchmarks/latency.py --quick
  python benchmarks/latency.py [--batches=1,32] [--profile] [--tflite_dir=DIR] [--format=markdown]
"""

import dataclasses
import os
import shutil
import sys
import tempfile

import _common
from absl import app
from absl import flags

from autonl_tf import arch as arch_lib
from autonl_tf import flops

MODELS = ("autonl-s", "autonl-l", "mobilenetv2", "mobilenetv3large")
MNV3_LARGE_MACS = 219e6  # published (Howard et al. 2019) at 224; not counted here

flags.DEFINE_list("models", None, f"Models among {', '.join(MODELS)} (default: autonl-s and "
                  "mobilenetv2 with --quick, else all).")
flags.DEFINE_list("batches", None, "Batch sizes (default: 1 with --quick, else 1,32).")
flags.DEFINE_integer("input_size", None, "Image size (default: 128 with --quick, else 224).")
flags.DEFINE_bool("profile", None, "Time AutoNL-S variants in TFLite (default: when AutoNL-S is "
                  "slower than MobileNetV2 in TFLite at batch 1, except with --quick).")
flags.DEFINE_string("tflite_dir", None, "Also write the .tflite files here (for "
                    "benchmark_model --enable_op_profiling).")
FLAGS = flags.FLAGS


def build(name, size):
  """(keras model, preprocessing of 0-255 images, MACs, MAC note)."""
  import keras
  from autonl_tf.data import preprocess
  from autonl_tf.models.network import build_model
  shape = (size, size, 3)
  if isinstance(name, arch_lib.Arch) or name.startswith("autonl") or name == "mobilenet-v2":
    return (build_model(name, shape, 1000), preprocess.normalize,
            flops.count(arch_lib.load(name), size, 1000).macs, "")
  if name == "mobilenetv2":
    model = keras.applications.MobileNetV2(input_shape=shape, weights=None, classifier_activation=None)
    return (model, lambda x: x / 127.5 - 1.0,
            flops.count(arch_lib.load("mobilenet-v2"), size, 1000).macs, "mobilenet-v2 preset count")
  if name == "mobilenetv3large":
    model = keras.applications.MobileNetV3Large(input_shape=shape, weights=None,
                                                classifier_activation=None)  # rescales inside
    note = "published 219M" + ("" if size == 224 else f" x ({size}/224)^2")
    return model, lambda x: x, MNV3_LARGE_MACS * (size / 224) ** 2, note
  raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")


def export(model, prep, size, path):
  import keras
  import tensorflow as tf
  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint("serve", lambda images: model(prep(images), training=False),
                       input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="images")])
  archive.write_out(path, verbose=False)


def to_tflite(saved_model_dir):
  import tensorflow as tf
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  return converter.convert()


def tflite_fn(flat, batch, size, images):
  from ai_edge_litert.interpreter import Interpreter
  interp = Interpreter(model_content=flat, num_threads=_common.num_threads())
  index = interp.get_input_details()[0]["index"]
  interp.resize_tensor_input(index, [batch, size, size, 3])
  interp.allocate_tensors()
  interp.set_tensor(index, images)
  return interp.invoke


def run_model(name, size, batches, warmup, repeats, tmp, tflite_only=False):
  """{batch: {format: Timing}}, MACs, MAC note and the TFLite flatbuffer."""
  import keras
  import numpy as np
  import tensorflow as tf
  keras.backend.clear_session()
  model, prep, macs, note = build(name, size)
  path = os.path.join(tempfile.mkdtemp(dir=tmp), "saved_model")
  export(model, prep, size, path)
  # Keep the loaded object itself: its bound endpoint alone does not keep
  # the restored variables alive.
  loaded = None if tflite_only else tf.saved_model.load(path)
  flat = to_tflite(path)
  if FLAGS.tflite_dir and isinstance(name, str) and not tflite_only:
    os.makedirs(FLAGS.tflite_dir, exist_ok=True)
    with open(os.path.join(FLAGS.tflite_dir, f"{name}_{size}.tflite"), "wb") as f:
      f.write(flat)
  out = {}
  for b in batches:
    images = np.random.default_rng(b).uniform(0, 255, (b, size, size, 3)).astype("float32")
    tensor = tf.constant(images)
    fns = {"TFLite": tflite_fn(flat, b, size, images)}
    if not tflite_only:
      # The same function of 0-255 images as the SavedModel's endpoint, as a
      # tf.function of the in-memory Keras model.
      keras_fn = tf.function(lambda x: model(prep(x), training=False))
      fns["Keras"] = lambda: keras_fn(tensor).numpy()
      fns["SavedModel"] = lambda: loaded.serve(tensor).numpy()
    out[b] = _common.measure_many(fns, warmup, repeats)
  return out, macs, note, flat


def profile(size, warmup, repeats, tmp):
  """TFLite batch-1 latency of AutoNL-S variants, side by side."""
  from autonl_tf.export.tflite import op_counts
  s = arch_lib.load("autonl-s")
  strip = lambda **kw: dataclasses.replace(s, blocks=[dataclasses.replace(b, **kw) for b in s.blocks])
  variants = [("AutoNL-S", "autonl-s"), ("AutoNL-S without LightNL", strip(nl_ratio=0.0)),
              ("AutoNL-S without SE", strip(se_ratio=0.0)),
              ("AutoNL-S without LightNL and SE", strip(nl_ratio=0.0, se_ratio=0.0)),
              ("mobilenet-v2 preset (swish, our MBConv)", arch_lib.load("mobilenet-v2")),
              ("keras MobileNetV2 (relu6)", "mobilenetv2")]
  measured, ops = [], {}
  for label, what in variants:
    t, macs, _, flat = run_model(what, size, [1], warmup, repeats, tmp, tflite_only=True)
    measured.append((label, macs, t[1]["TFLite"].median))
    ops[label] = op_counts(flat)
  base = measured[0][2]
  _common.title(f"Profile: TFLite float32, batch 1, {size}px, {_common.num_threads()} threads")
  _common.table(["variant", "MACs", "TFLite ms", "vs AutoNL-S"],
                [[l, _common.millions(m), _common.ms(t), _common.ratio(t / base)]
                 for l, m, t in measured])
  names = sorted(set().union(*ops.values()))
  _common.title("TFLite op counts")
  _common.table(["op"] + [f"({i + 1})" for i in range(len(ops))],
                [[n] + [o.get(n, 0) for o in ops.values()] for n in names])
  _common.note("Columns (1)-(6): the variants above, in order.")
  t = {label: ms for label, _, ms in measured}
  labels = [l for l, _ in variants]
  costs = [("LightNL (its BATCH_MATMULs, slices, depthwise 3x3)", t[labels[0]] - t[labels[1]]),
           ("squeeze-excitation (MEAN, two small convs, LOGISTIC, MUL)", t[labels[0]] - t[labels[2]]),
           ("swish instead of relu6 (LOGISTIC + MUL per activation)", t[labels[4]] - t[labels[5]])]
  for what, cost in costs:
    _common.note(f"{what}: {_common.ms(cost)} ms of AutoNL-S's {_common.ms(base)} ms "
                 f"({100 * cost / base:.0f}%)")
  worst = max(costs, key=lambda c: c[1])
  _common.note(f"costliest: {worst[0]}. Per-op times: LiteRT's benchmark_model "
               "--enable_op_profiling=true on the files written by --tflite_dir.")


def main(argv):
  del argv
  models = _common.pick(FLAGS.models, ["autonl-s", "mobilenetv2"], list(MODELS))
  batches = [int(b) for b in _common.pick(FLAGS.batches, ["1"], ["1", "32"])]
  size = _common.pick(FLAGS.input_size, 128, 224)
  warmup, repeats = _common.warmup_repeats(quick=(2, 5), full=(5, 20))
  bad = [m for m in models if m not in MODELS]
  if bad:
    print(f"error: unknown model(s) {', '.join(bad)}; known: {', '.join(MODELS)}", file=sys.stderr)
    return 2
  _common.setup()
  from importlib import metadata
  _common.header("CPU latency: AutoNL vs MobileNetV2 / V3-Large")
  _common.note(f"LiteRT {metadata.version('ai-edge-litert')}, TFLite threads: "
               f"{_common.num_threads()}, TF intra-op threads: {FLAGS.threads or 'default'}")
  tmp = tempfile.mkdtemp(prefix="latency-")
  try:
    results = {m: run_model(m, size, batches, warmup, repeats, tmp) for m in models}
    ref = results.get("mobilenetv2")
    rows = []
    for m, (t, macs, note, _) in results.items():
      for b in batches:
        med = {f: t[b][f].median for f in ("Keras", "SavedModel", "TFLite")}
        vs = _common.ratio(med["TFLite"] / ref[0][b]["TFLite"].median) if ref else "-"
        rows.append([m, _common.millions(macs) + (f" ({note})" if note else ""), b,
                     *(_common.ms(med[f]) for f in med), vs])
    _common.title(f"{size}px, float32, median of {repeats} after {warmup} warm-up (ms per batch)")
    _common.table(["model", "MACs", "batch", "Keras", "SavedModel", "TFLite",
                   "TFLite vs MobileNetV2"], rows)
    _common.note("Keras: the in-memory model and its preprocessing in a tf.function; SavedModel: "
                 "the reloaded endpoint (the same function); TFLite: invoke().")
    slower = None
    if "autonl-s" in results and ref:
      base = results["autonl-s"][0][1 if 1 in batches else batches[0]]["TFLite"].median
      other = ref[0][1 if 1 in batches else batches[0]]["TFLite"].median
      slower = base > other
      _common.note(f"AutoNL-S vs MobileNetV2, TFLite: {base / other:.2f}x the time "
                   f"(target <= 1.00): {_common.verdict(not slower)}")
    if FLAGS.profile or (FLAGS.profile is None and slower and not FLAGS.quick):
      profile(size, warmup, repeats, tmp)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
