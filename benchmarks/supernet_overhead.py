"""Time of one supernet search step vs one training step of the largest child
on the same batch (target: ratio <= 1.3).

The largest child takes every option of every searchable block: 7x7 kernel,
expand 6, no skip, LightNL at the largest ratio with stride 1. The supernet
is `search.runner.build_supernet` (search phase on: cost and architecture
step active) with every decision forced to 1, so it derives exactly that
child; the child is `training.trainer.build_and_compile` of the derived arch
(the training recipe: RMSProp + EMA, label smoothing, dropout, drop-connect).
Both steps run through the compiled `train_function` that `fit` uses.

  python benchmarks/supernet_overhead.py --quick      # tiny space, 16px
  python benchmarks/supernet_overhead.py              # autonl-imagenet space, 224px, batch 32
"""

import os
import shutil
import sys
import tempfile

import _common
from absl import app
from absl import flags

TARGET = 1.3

flags.DEFINE_string("space", None, "Search space (default: tiny with --quick, else autonl-imagenet).")
flags.DEFINE_integer("input_size", None, "Image size (default: 16 with --quick, else 224).")
flags.DEFINE_integer("batch_size", None, "Batch size (default: 8 with --quick, else 32).")
flags.DEFINE_integer("num_classes", None, "Classes (default: 10 with --quick, else 1000).")
FLAGS = flags.FLAGS


def largest_child_problems(space, arch):
  """Blocks of the derived arch that are not the largest option."""
  blocks = arch.blocks[1:] if space.first_block else arch.blocks
  want_stride = 1 if 1 in space.nl_strides else space.nl_strides[0]
  bad = [i for i, b in enumerate(blocks)
         if b.kernel_sizes != (max(space.kernel_sizes),) or b.expand_ratio != space.expand_ratios[1]
         or b.nl_ratio != space.nl_ratios[-1] or b.nl_stride != want_stride]
  if len(blocks) != len(space.blocks()):
    bad.append(f"{len(space.blocks()) - len(blocks)} skipped")
  return bad


def main(argv):
  del argv
  space_name = _common.pick(FLAGS.space, "tiny", "autonl-imagenet")
  size = _common.pick(FLAGS.input_size, 16, 224)
  batch = _common.pick(FLAGS.batch_size, 8, 32)
  classes = _common.pick(FLAGS.num_classes, 10, 1000)
  warmup, repeats = _common.warmup_repeats(quick=(1, 3), full=(2, 8))
  _common.setup()
  import numpy as np
  import tensorflow as tf
  from autonl_tf import arch as arch_lib
  from autonl_tf import flops
  from autonl_tf.data import DataConfig
  from autonl_tf.search.runner import SearchConfig, build_supernet
  from autonl_tf.search.space import get_space
  from autonl_tf.training.trainer import TrainConfig, build_and_compile

  _common.header("Supernet search step vs largest-child train step")
  space = get_space(space_name)
  data = DataConfig("synthetic", input_size=size, num_classes=classes)
  tmp = tempfile.mkdtemp(prefix="supernet_overhead-")
  try:
    net = build_supernet(SearchConfig(space=space_name, data=data, model_dir=tmp, batch_size=batch),
                         classes, steps_per_epoch=1000)
    net.search_phase.assign(1.0)  # the search proper: cost and architecture step on
    net.dropout_var.assign(0.0)
    net.force_state(dict.fromkeys(net.decision_names, 1))
    arch = net.derive()
    bad = largest_child_problems(space, arch)
    if bad:
      print(f"error: forcing every decision did not give the largest child (blocks {bad})",
            file=sys.stderr)
      return 1
    arch_path = os.path.join(tmp, "largest_child.txt")
    with open(arch_path, "w") as f:
      f.write(arch_lib.format_arch(arch))
    child = build_and_compile(TrainConfig(arch=arch_path, data=data, model_dir=tmp,
                                          batch_size=batch), classes, steps_per_epoch=1000)
    # The recipe adds an EMA update, dropout and drop-connect that the
    # supernet's step does not have: the bare child is the strict reference.
    bare = build_and_compile(TrainConfig(arch=arch_path, data=data, model_dir=tmp,
                                         batch_size=batch, ema_momentum=0.0, dropout_rate=0.0,
                                         drop_connect_rate=0.0), classes, steps_per_epoch=1000)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, size, size, 3)).astype("float32"))
    y = tf.constant(rng.integers(0, classes, batch).astype("int32"))
    steps = {"supernet search step": _common.train_step_fn(net, x, y),
             "largest child train step": _common.train_step_fn(child, x, y),
             "largest child, bare step": _common.train_step_fn(bare, x, y)}
    t = _common.measure_many(steps, warmup, repeats)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)

  count = flops.count(arch, size, classes)
  child_t = t["largest child train step"].median
  bare_t = t["largest child, bare step"].median
  rows = []
  for name, model in (("supernet search step", net), ("largest child train step", child),
                      ("largest child, bare step", bare)):
    m = t[name].median
    rows.append([name, _common.ms(m), _common.ms(t[name].min), f"{batch / m:.1f}",
                 f"{model.count_params() / 1e6:.2f}M", _common.ratio(m / child_t),
                 _common.ratio(m / bare_t)])
  _common.title(f"space {space_name}, {size}px, batch {batch}, {classes} classes; "
                f"median of {repeats} interleaved steps after {warmup + 2} warm-up")
  _common.table(["step", "ms/step", "min ms", "images/s", "params", "vs child", "vs bare child"],
                rows)
  supernet_macs = float(net.macs())
  same = abs(supernet_macs - count.macs) <= 1e-6 * count.macs  # float32 in the supernet
  _common.note(f"largest child: {len(arch.blocks)} blocks, k{max(space.kernel_sizes)} "
               f"e{space.expand_ratios[1]} LightNL r={space.nl_ratios[-1]:g} "
               f"s={1 if 1 in space.nl_strides else space.nl_strides[0]} in every searchable "
               f"block; {_common.millions(count.macs)} MACs/image; the supernet's cost "
               f"{_common.millions(supernet_macs)} "
               f"({'equal' if same else 'DIFFERENT'} to float32 precision). The child step is "
               "the training recipe (RMSProp + EMA, dropout 0.2, drop-connect 0.2); the bare step "
               "has no EMA, dropout or drop-connect, like the supernet's.")
  for what, ref in (("recipe child", child_t), ("bare child", bare_t)):
    r = t["supernet search step"].median / ref
    _common.note(f"supernet / {what} step time: {r:.2f} (target <= {TARGET}): "
                 f"{_common.verdict(r <= TARGET)}")
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
