"""Images/s of the train input pipeline alone vs the train step alone
(target: pipeline >= 3x the step, so the input is never the bottleneck).

Two cases: CIFAR-10 at 32px (TFDS `cifar10`) and synthetic ImageNet-size
JPEGs (about 400x350, written with PIL into a temporary
`<root>/train/<class>/<image>.jpg` folder) at 224, read through `folder:` so
the real decode-and-crop + RandAugment path runs. The pipeline is
`data.make_dataset(..., "train", training=True)` iterated on its own after a
warm-up; the step is the compiled train step (`trainer.build_and_compile`)
of --arch on one fixed in-memory batch. They are measured one after the
other, never concurrently (on a real run they share the cores).

  python benchmarks/input_pipeline.py --quick
  python benchmarks/input_pipeline.py [--data_dir=/work/tfds] [--cases=cifar10,jpeg224]
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

TARGET = 3.0
CASES = ("cifar10", "jpeg224")

flags.DEFINE_list("cases", list(CASES), f"Which of {', '.join(CASES)} to run.")
flags.DEFINE_string("data_dir", os.environ.get("TFDS_DATA_DIR", "/work/tfds"),
                    "TFDS data directory holding a prepared cifar10.")
flags.DEFINE_string("arch", "autonl-s", "Model of the train step.")
flags.DEFINE_integer("cifar_stem_stride", 1, "Stem stride of --arch in the CIFAR-10 case (1: as "
                     "the CIFAR-10 runs of this project, 4x the MACs of the 224px stem).")
flags.DEFINE_integer("cifar_batch", None, "CIFAR-10 batch size (default: 64 with --quick, else 128).")
flags.DEFINE_integer("jpeg_batch", None, "224px batch size (default: 8 with --quick, else 64).")
flags.DEFINE_integer("num_jpegs", None, "Synthetic JPEGs to write (default: 64 with --quick, else 256).")
flags.DEFINE_integer("batches", None, "Pipeline batches per timed repeat (default: 5 with --quick, "
                     "else 20).")
FLAGS = flags.FLAGS


def write_jpegs(root, n, classes=4, seed=0):
  """`n` smooth random RGB JPEGs of about 400x350 (ImageNet's typical size):
  upsampled coarse noise plus fine noise, so they compress like photos."""
  import numpy as np
  from PIL import Image
  rng = np.random.default_rng(seed)
  for i in range(n):
    folder = os.path.join(root, "train", f"class_{i % classes}")
    os.makedirs(folder, exist_ok=True)
    w, h = int(rng.integers(320, 480)), int(rng.integers(280, 420))
    coarse = rng.integers(0, 256, (h // 24 + 1, w // 24 + 1, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), np.float32)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)


def pipeline_rate(config, batch, warmup, repeats, n_batches):
  from autonl_tf.data import make_dataset
  it = iter(make_dataset(config, "train", batch, training=True))

  def consume():
    for _ in range(n_batches):
      next(it)

  t = _common.measure(consume, warmup, repeats)  # each warm-up run is n_batches batches too
  return n_batches * batch / t.median


def step_rate(arch, config, batch, classes, warmup, repeats, tmp):
  import numpy as np
  import tensorflow as tf
  from autonl_tf.training.trainer import TrainConfig, build_and_compile
  model = build_and_compile(TrainConfig(arch=arch, data=config, model_dir=tmp,
                                        batch_size=batch), classes, steps_per_epoch=1000)
  size = config.input_size
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(size=(batch, size, size, 3)).astype("float32"))
  y = tf.constant(rng.integers(0, classes, batch).astype("int32"))
  t = _common.measure(_common.train_step_fn(model, x, y), warmup, repeats)
  return batch / t.median


def main(argv):
  del argv
  bad = [c for c in FLAGS.cases if c not in CASES]
  if bad:
    print(f"error: unknown case(s) {', '.join(bad)}; known: {', '.join(CASES)}", file=sys.stderr)
    return 2
  warmup, repeats = _common.warmup_repeats(quick=(1, 3), full=(2, 5))
  n_batches = _common.pick(FLAGS.batches, 5, 20)
  _common.setup()
  import keras
  from autonl_tf.data import DataConfig, DataError, dataset_info
  _common.header("Input pipeline vs train step")
  tmp = tempfile.mkdtemp(prefix="input_pipeline-")
  rows, notes = [], []
  try:
    for case in FLAGS.cases:
      if case == "cifar10":
        batch, classes = _common.pick(FLAGS.cifar_batch, 64, 128), 10
        config = DataConfig("cifar10", data_dir=FLAGS.data_dir, input_size=32)
        label = f"CIFAR-10 (TFDS), stem stride {FLAGS.cifar_stem_stride}"
        arch = os.path.join(tmp, "cifar_arch.txt")
        with open(arch, "w") as f:
          f.write(arch_lib.format_arch(dataclasses.replace(
              arch_lib.load(FLAGS.arch), stem_stride=FLAGS.cifar_stem_stride)))
        try:
          dataset_info(config)
        except DataError as e:
          notes.append(f"skipped CIFAR-10: {e}. Prepare it with: python tools/prepare_data.py "
                       f"--dataset=cifar10 --data_dir={FLAGS.data_dir}")
          continue
      else:
        batch, classes = _common.pick(FLAGS.jpeg_batch, 8, 64), 1000
        n = _common.pick(FLAGS.num_jpegs, 64, 256)
        root = os.path.join(tmp, "jpegs")
        write_jpegs(root, n)
        config = DataConfig(f"folder:{root}", input_size=224)
        label = f"{n} synthetic ~400x350 JPEGs (folder:)"
        arch = FLAGS.arch
      pipe = pipeline_rate(config, batch, warmup, repeats, n_batches)
      keras.backend.clear_session()
      step = step_rate(arch, config, batch, classes, warmup, repeats, tmp)
      r = pipe / step
      rows.append([label, config.input_size, batch, f"{pipe:.0f}", f"{step:.1f}", _common.ratio(r),
                   _common.verdict(r >= TARGET)])
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  _common.title(f"train pipeline vs {FLAGS.arch} train step, images/s (median of {repeats}; "
                f"pipeline: {n_batches} batches per repeat)")
  _common.table(["data", "size", "batch", "pipeline img/s", "step img/s", "pipeline/step",
                 f">= {TARGET:g}x"], rows)
  _common.note("The 224px pipeline decodes, random-crops and RandAugments every image "
               "(DataConfig defaults). CIFAR-10 is timed within its first epoch (records read "
               "and decoded; later epochs come from the in-memory cache and are faster). The "
               "JPEGs were just written, so they are read from the page cache, not the disk. "
               "The pipeline is timed alone on all cores; in training it shares them with the "
               "step, so the ratio is an upper bound of the headroom.")
  for line in notes:
    _common.note(line)
  return 0 if rows else 1


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
