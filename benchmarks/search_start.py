"""Where does a short search's first epoch go? The supernet's warm-up steps at
the settings of the short search check (`tools/search.py --recipe=cifar
--epochs=4 --warmup_epochs=1 --steps_per_epoch=50 --batch_size=64`), for
each of --arms: a search space, optionally with the residual branches'
last BN scale started at 0 (`<space>+zero_residual`, the fixed network's
`MBConv(zero_init_residual=True)`; the supernet starts it at 1), at another
value (`<space>+residual_scale=0.25`), or without the warm-up's gate dropout
(`<space>+no_gate_dropout`).

Printed per arm: the cross-entropy step by step (the mean over the epoch is
the search log's epoch-1 `ce`), then per block, at the first step and after
the last: the output's RMS and its gradient's RMS (on one training batch
in training mode, without stepping), and the gradient's norm relative to
the block's weights' norm.

  python benchmarks/search_start.py --data_dir=runs/tfds --format=markdown
  python benchmarks/search_start.py --quick
"""

import math
import sys
import tempfile

import _common as C
from absl import app
from absl import flags

flags.DEFINE_string("data_dir", None, "TFDS data directory with cifar10.")
flags.DEFINE_list("arms", ["cifar", "cifar13", "cifar+zero_residual"],
                  "Spaces to probe; `+zero_residual` starts the residual branches' last BN "
                  "scale at 0, `+no_gate_dropout` turns the warm-up's gate dropout off.")
flags.DEFINE_integer("steps", None, "Warm-up steps (default 50; 3 with --quick).")
flags.DEFINE_integer("batch_size", None, "Batch size (default 64; 8 with --quick).")
flags.DEFINE_integer("seed", 1, "Seed of the weights, the data order and the gate dropout.")
FLAGS = flags.FLAGS

ZERO_RESIDUAL = "+zero_residual"
NO_GATE_DROPOUT = "+no_gate_dropout"
RESIDUAL_SCALE = "residual_scale="


def _config(space, data, steps, batch, **fields):
  from autonl_tf import recipes
  return recipes.search_config("cifar", space=space, data=data, model_dir=tempfile.mkdtemp(),
                               epochs=4, supernet_warmup_epochs=1, steps_per_epoch=steps,
                               batch_size=batch, verbose=0, **fields)


def _rms(t):
  import tensorflow as tf
  return float(tf.sqrt(tf.reduce_mean(tf.square(tf.cast(t, tf.float32)))))


def _norm(tensors):
  return math.sqrt(sum(float((t.numpy().astype("float64") ** 2).sum()) for t in tensors))


def probe_blocks(net, x, y):
  """[(block, output RMS, output-gradient RMS, |grad w| / |w|)] of one
  forward and backward pass in training mode (no step)."""
  import keras
  import tensorflow as tf
  weights = {id(v) for v in net.weight_variables}
  layers = ([("first", net.first)] if net.first is not None else []) + [
      (b.name, b) for b in net.blocks]
  with tf.GradientTape(persistent=True) as tape:
    h = net._act(net.stem_bn(net.stem_conv(x), training=True))
    outputs = []
    for _, layer in layers:
      h = layer(h, training=True)
      tape.watch(h)
      outputs.append(h)
    h = net._act(net.head_bn(net.head_conv(h), training=True))
    logits = net.classifier(net.pool(h))
    ce = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
        tf.reshape(y, [-1]), logits, from_logits=True))
  rows = []
  for (name, layer), out in zip(layers, outputs):
    own = [v for v in layer.trainable_weights if id(v) in weights]
    grads = [g for g in tape.gradient(ce, own) if g is not None]
    rows.append((name, _rms(out), _rms(tape.gradient(ce, out)),
                 _norm(grads) / max(_norm(own), 1e-30)))
  del tape
  return rows


def run_arm(arm, data, steps, batch):
  import keras
  from autonl_tf.data import make_dataset
  from autonl_tf.search import runner
  space, *changes = arm.split("+")
  scale = 0.0 if ZERO_RESIDUAL[1:] in changes else None
  for change in changes:
    if change.startswith(RESIDUAL_SCALE):
      scale = float(change[len(RESIDUAL_SCALE):])
  unknown = {c for c in changes if not c.startswith(RESIDUAL_SCALE)} - {
      ZERO_RESIDUAL[1:], NO_GATE_DROPOUT[1:]}
  if unknown:
    raise ValueError(f"arm {arm!r}: unknown change(s) {', '.join(sorted(unknown))}")
  keras.utils.set_random_seed(FLAGS.seed)
  fields = {"gate_dropout": 0.0} if NO_GATE_DROPOUT[1:] in changes else {}
  config = _config(space, data, steps, batch, **fields)
  net = runner.build_supernet(config, data.num_classes or 10, steps)
  if scale is not None:
    for b in net.blocks:
      if b.residual:
        b.project_bn.gamma.assign(keras.ops.full_like(b.project_bn.gamma, scale))
  batches = iter(make_dataset(data, "train", batch, training=True))
  probe_x, probe_y = next(batches)
  before = probe_blocks(net, probe_x, probe_y)
  ces, accuracies = [], []
  for _ in range(steps):
    x, y = next(batches)
    net.reset_metrics()
    logs = net.train_on_batch(x, y, return_dict=True)
    ces.append(float(logs["ce"]))
    accuracies.append(float(logs["accuracy"]))
  after = probe_blocks(net, probe_x, probe_y)
  return ces, accuracies, before, after


def _mean(values):
  return sum(values) / len(values) if values else float("nan")


def main(argv):
  del argv
  C.setup(FLAGS.seed)
  from autonl_tf.data import DataConfig
  C.header("the supernet's first warm-up steps, per block")
  steps = C.pick(FLAGS.steps, 3, 50)
  batch = C.pick(FLAGS.batch_size, 8, 64)
  if FLAGS.quick:
    data = DataConfig("synthetic", input_size=16, num_classes=5, seed=FLAGS.seed)
    arms = ["tiny", "tiny" + ZERO_RESIDUAL]
  else:
    data = DataConfig("cifar10", data_dir=FLAGS.data_dir, input_size=32, seed=FLAGS.seed)
    arms = FLAGS.arms
  chance = math.log(data.num_classes or 10)
  summary = []
  for arm in arms:
    ces, accuracies, before, after = run_arm(arm, data, steps, batch)
    thirds = [ces[i * steps // 3:(i + 1) * steps // 3] for i in range(3)]
    summary.append([arm, len(before), *(f"{_mean(t):.3f}" for t in thirds),
                    f"{_mean(ces):.3f}", f"{100 * _mean(accuracies[-max(1, steps // 5):]):.1f}"])
    C.title(f"{arm}: per block, before the first step and after step {steps}")
    C.table(["block", "out RMS", "grad RMS", "|g|/|w|", "out RMS after", "grad RMS after",
             "|g|/|w| after"],
            [[n, f"{r:.3g}", f"{g:.3g}", f"{q:.3g}", f"{r2:.3g}", f"{g2:.3g}", f"{q2:.3g}"]
             for (n, r, g, q), (_, r2, g2, q2) in zip(before, after)])
    sys.stdout.flush()
  C.title(f"{steps} warm-up steps of batch {batch}, CIFAR recipe, seed {FLAGS.seed}; "
          f"chance = {chance:.3f}")
  C.table(["arm", "blocks", "ce, first third", "second third", "last third", "ce, epoch mean",
           "accuracy %, last fifth"], summary)


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
