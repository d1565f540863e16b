"""Planted signals: on a small synthetic task where one option is needed and
another of similar (not larger) cost is not, at a budget that fits only one
of them, the search keeps the needed one. Two tasks, each needing one of the
two options that the other task does not:

* LightNL (`bands`): each image has a band of colour `a` on its left edge and
  a band of colour `b` on its right edge (two colours, noisy), the middle
  empty; the label is `a == b`, an XOR of the two bands. Without LightNL no
  position's receptive field spans both bands (3x3 stem + two 3x3 depthwise
  convs see +-3 pixels, a 5x5 kernel in the second block +-4; the gap is 8),
  and the head (per-position features, average pooling, a linear classifier)
  can only add a function of `a` to a function of `b`, which no XOR is;
  LightNL's `q (k^T v)` brings the other band's statistics to every position.
* 5x5 kernel (`lines`): two vertical lines 7 or 9 columns apart; the label
  is which. With the 5x5 kernel in the second block a position between lines
  7 apart sees both (+-4), with 3x3 kernels none does (+-3), and no feature
  of a single line, pooled, tells the distance: the lines stay 5 columns
  from the borders, so every feature is translation-invariant.
  LightNL's `k^T v` sums products of features at one position, which carry
  no distance either: it cannot help.
"""

import keras
import numpy as np
import tensorflow as tf

from autonl_tf.data import DataConfig
from autonl_tf.search import SearchSpace, Stage
from autonl_tf.search.callbacks import LandingLog, SearchPhase
from autonl_tf.search.landing import land
from autonl_tf.search.runner import SearchConfig, build_supernet

SPACE = SearchSpace(name="planted", stages=(Stage(24, 2, 1),), stem_filters=24, stem_stride=1,
                    first_block="", head_filters=32, kernel_sizes=(3, 5), nl_ratios=(1.0,),
                    nl_strides=(1,))
# Everything but the second block's LightNL and 5x5 kernel is fixed.
FIXED = {"sblock_0/k5": 0, "sblock_0/e_large": 0, "sblock_0/nl": 0, "sblock_1/e_small": 1}


def bands(n, seed, size=16, width=4, noise=0.3):
  """(images, labels) of the two-band XOR task."""
  rng = np.random.default_rng(seed)
  a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
  x = rng.normal(0, noise, (n, size, size, 3)).astype(np.float32)
  x[np.arange(n), :, :width, a] += 2.0
  x[np.arange(n), :, size - width:, b] += 2.0
  return x, (a == b).astype(np.int32)


def lines(n, seed, size=20, near=7, far=9, border=5, noise=0.3):
  """(images, labels) of the line-distance task: label 1 when the two lines
  are `near` columns apart, 0 when `far`; both at least `border` columns
  from the image's edges."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, n)
  gap = np.where(y == 1, near, far)
  left = border + (rng.random(n) * (size - 2 * border - gap)).astype(int)
  x = rng.normal(0, noise, (n, size, size, 3)).astype(np.float32)
  x[np.arange(n), :, left, :] += 2.0
  x[np.arange(n), :, left + gap, :] += 2.0
  return x, y.astype(np.int32)


def _config(size, **fields):
  data = DataConfig("synthetic", input_size=size, num_classes=2)
  return SearchConfig(**{**dict(space=SPACE, data=data, model_dir="", batch_size=64,
                                optimizer="adam", lr_per_256=0.012, label_smoothing=0.0,
                                weight_decay=0.0, gate_dropout=0.5), **fields})


def _search_keeps(task, fixed, needed, unneeded):
  """Searches the task (`fn(n, seed) -> (x, y)`) with `fixed` forced, at the
  budget of the needed option alone; asserts that the premise holds (the
  needed option costs at least as much as the unneeded one, both do not fit)
  and that the search keeps the needed option and drops the other."""
  keras.utils.set_random_seed(0)
  x, y = task(2048, seed=0)
  xv, yv = task(512, seed=1)
  size, steps = x.shape[1], len(x) // 64
  macs = {}
  probe = build_supernet(_config(size), 2, steps)
  for a in (0, 1):
    for b in (0, 1):
      probe.force_state({**fixed, f"sblock_1/{needed}": a, f"sblock_1/{unneeded}": b})
      macs[a, b] = float(probe.macs())
  assert macs[1, 0] - macs[0, 0] >= macs[0, 1] - macs[0, 0] > 0
  target = macs[1, 0]
  config = _config(size, epochs=7, supernet_warmup_epochs=2, steps_per_epoch=steps, cost="target",
                   target_macs=target, arch_lr=0.05, dual_lr=0.5, penalty=2.0)
  assert macs[1, 1] > target * (1 + config.tolerance)
  net = build_supernet(config, 2, steps)
  net.force_state(fixed)
  landing_log = LandingLog(config.epochs, config.supernet_warmup_epochs, config.tolerance)
  history = net.fit(x, y, batch_size=64, epochs=config.epochs, verbose=0, shuffle=True,
                    callbacks=[SearchPhase(config.supernet_warmup_epochs, config.gate_dropout),
                               landing_log])
  assert history.history["accuracy"][-1] > 0.9  # the task was learned (with the needed option)
  names = net.decision_names
  margins, _, _ = net.trace()
  kept, dropped = (margins[names.index(f"sblock_1/{d}")] for d in (needed, unneeded))
  assert kept > dropped  # the needed decision ends further from flipping off
  val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(128)
  record = land(net, landing_log.visited, val, config)
  arch = net.derive()
  net.force_state(None)
  assert record["chosen_by"] == "validation accuracy", record
  return arch.blocks[-1]


def test_search_keeps_lightnl_where_the_task_needs_it_over_a_kernel_it_does_not():
  # The narrow expansion: LightNL (350k MACs) costs more than the ring (295k).
  second = _search_keeps(bands, {**FIXED, "sblock_1/e_large": 0}, "nl", "k5")
  assert second.has_nonlocal and second.kernel_sizes == (3,), second


def test_search_keeps_a_5x5_kernel_where_the_task_needs_it_over_lightnl():
  # The wide expansion: the 5x5 ring costs more than LightNL.
  second = _search_keeps(lines, {**FIXED, "sblock_1/e_large": 1}, "k5", "nl")
  assert not second.has_nonlocal and second.kernel_sizes == (5,), second
