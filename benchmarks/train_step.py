"""Training steps with and without autonl_tf's two CPU training paths:
Keras' BatchNormalization against ours, trained with TensorFlow's fused
kernel (autonl_tf/layers/batch_norm.py), and TensorFlow's depthwise kernel
gradient against the strip-wise one that stays on oneDNN's fast path for
5x5 and 7x7 kernels (autonl_tf/layers/depthwise.py).

Each network is built, compiled and traced once per variant (both switches,
`batch_norm.USE_FUSED` and `depthwise.USE_STRIPS`, are read when a step is
traced), then the variants' steps are timed interleaved on one fixed batch.
Two more variants, not run by default (`--variants`), compile the default
step with XLA (`xla`: `jit_compile=True`) or in mixed bfloat16 (`bf16`); the
speed-up column is against the first variant listed.
Networks, at 32px and 10 classes with the CIFAR recipe: `study` (the
search-vs-random study's hand network, autonl-s-cifar at width 0.5),
`autonl-s-cifar`, and `supernet` (a search step of the cifar space at width
0.5, every decision on).

  python benchmarks/train_step.py --format=markdown
  python benchmarks/train_step.py --networks=autonl-s-cifar --variants=both,xla,bf16
  python benchmarks/train_step.py --quick
"""

import shutil
import sys
import tempfile

import _common
from absl import app
from absl import flags

NETWORKS = ("study", "autonl-s-cifar", "supernet")
# name: (label, fused BN, strip depthwise gradient, config fields)
VARIANTS = {"keras": ("Keras BN, TF depthwise gradient", False, False, {}),
            "fused": ("fused BN", True, False, {}),
            "strips": ("strip depthwise gradient", False, True, {}),
            "both": ("both (default)", True, True, {}),
            "xla": ("both, XLA (jit_compile)", True, True, {"jit_compile": True}),
            "bf16": ("both, mixed_bfloat16", True, True, {"precision": "mixed_bfloat16"})}

flags.DEFINE_list("networks", None, f"Of {', '.join(NETWORKS)} (default: study with --quick, "
                  "else all).")
flags.DEFINE_integer("batch_size", None, "Batch size (default: 8 with --quick, else 128).")
flags.DEFINE_list("variants", ["keras", "fused", "strips", "both"],
                  f"Of {', '.join(VARIANTS)}, timed interleaved; the first is the speed-up's base.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  networks = _common.pick(FLAGS.networks, ["study"], list(NETWORKS))
  for name, given, known in (("networks", networks, NETWORKS),
                             ("variants", FLAGS.variants, VARIANTS)):
    unknown = sorted(set(given) - set(known))
    if unknown or not given:
      what = f"unknown {', '.join(unknown)}" if unknown else "none given"
      print(f"error: --{name}: {what} (known: {', '.join(known)})", file=sys.stderr)
      return 2
  batch = _common.pick(FLAGS.batch_size, 8, 128)
  width = 0.25 if FLAGS.quick else 0.5
  warmup, repeats = _common.warmup_repeats(quick=(1, 3), full=(2, 10))
  _common.setup()
  import dataclasses

  import numpy as np
  import tensorflow as tf
  from autonl_tf import arch as arch_lib
  from autonl_tf import flops
  from autonl_tf.data import DataConfig
  from autonl_tf.layers import batch_norm, depthwise
  from autonl_tf.search.runner import build_supernet
  from autonl_tf import recipes
  from autonl_tf.training.trainer import build_and_compile

  _common.header("Training step: Keras / TensorFlow paths vs autonl_tf's (fused BN, strip "
                 "depthwise gradient)")
  size, classes = 32, 10
  data = DataConfig("synthetic", input_size=size, num_classes=classes)
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(size=(batch, size, size, 3)).astype("float32"))
  y = tf.constant(rng.integers(0, classes, batch).astype("int32"))
  tmp = tempfile.mkdtemp(prefix="train_step-")
  rows = []
  try:
    for network in networks:
      if network == "supernet":
        what = f"supernet of cifar x{width:g}, every decision on"
      else:
        arch = arch_lib.load("autonl-s-cifar")
        if network == "study":
          arch = dataclasses.replace(arch_lib.scale_width(arch, width), nl_norm="none")
        count = flops.count(arch, size, classes)
        what = (f"{network}: {_common.millions(count.macs)} MACs, "
                f"{count.params / 1e6:.2f}M params")
      steps, defaults = {}, (batch_norm.USE_FUSED, depthwise.USE_STRIPS)
      for variant in FLAGS.variants:
        _, fused, strips, fields = VARIANTS[variant]
        batch_norm.USE_FUSED, depthwise.USE_STRIPS = fused, strips
        try:
          if network == "supernet":
            model = build_supernet(recipes.search_config(
                "cifar", space="cifar", width_multiplier=width, data=data, model_dir=tmp,
                batch_size=batch, **fields), classes, steps_per_epoch=1000)
            model.search_phase.assign(1.0)
            model.force_state(dict.fromkeys(model.decision_names, 1))
          else:
            model = build_and_compile(recipes.train_config(
                "cifar", arch=arch, data=data, model_dir=tmp, batch_size=batch, **fields),
                classes, steps_per_epoch=1000)
          steps[variant] = _common.train_step_fn(model, x, y)  # traced with these switches
        finally:
          batch_norm.USE_FUSED, depthwise.USE_STRIPS = defaults
      t = _common.measure_many(steps, warmup, repeats)
      base = t[FLAGS.variants[0]].median
      for variant in FLAGS.variants:
        m = t[variant].median
        rows.append([what, VARIANTS[variant][0], _common.ms(m), _common.ms(t[variant].min),
                     f"{batch / m:.0f}", f"{base / m:.2f}x"])
        what = ""
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  _common.title(f"{size}px, batch {batch}, {classes} classes, the CIFAR recipe; median of "
                f"{repeats} interleaved steps after {warmup + 2} warm-up")
  _common.table(["network", "variant", "ms/step", "min ms", "images/s", "speed-up"], rows)
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
