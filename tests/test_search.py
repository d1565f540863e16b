"""The search: gates, supernet == child for forced configurations, exact
differentiable cost, straight-through gradients, cost pressure, target mode,
MirroredStrategy equivalence, XLA."""


import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import autonl_tf
from autonl_tf import flops
from autonl_tf.data import DataConfig, make_dataset
from autonl_tf.search import SearchSpace, Stage, copy_child_weights, gates
from autonl_tf.search.blocks import THRESHOLDS
from autonl_tf.search.choices import DECISION_VALUES
from autonl_tf.search.derive import block_spec
from search_testing import make_net, randomize

TINY = SearchSpace(name="tiny", stages=(Stage(16, 2, 1), Stage(24, 2, 2, 0.25)), stem_filters=8,
                   stem_stride=1, first_block="r1_k3_s11_e1_i8_o8", head_filters=32)
SIZE = 12


def test_indicator_forward_and_straight_through_gradient():
  v = tf.Variable([0.3, -0.2, 1.5])
  t = tf.Variable([0.1, 0.1, 2.0])
  with tf.GradientTape() as tape:
    g = gates.indicator(v, t)
    out = tf.reduce_sum(g * [1.0, 2.0, 3.0])
  np.testing.assert_array_equal(g.numpy(), [1, 0, 0])
  dv, dt = tape.gradient(out, [v, t])
  s = 1 / (1 + np.exp(-(v.numpy() - t.numpy())))
  np.testing.assert_allclose(dv.numpy(), [1, 2, 3] * s * (1 - s), rtol=1e-6)
  np.testing.assert_allclose(dt.numpy(), -np.array([1, 2, 3]) * s * (1 - s), rtol=1e-6)
  f = gates.force(tf.constant(1.0), 0)
  assert float(f) == 0.0


CONFIGS = [
    {}, {"k5": 0}, {"k7": 0}, {"e_large": 0}, {"nl": 0}, {"r1": 0}, {"r2": 0},
    {"s1": 0}, {"r1": 0, "s1": 0}, {"e_small": 0}, {"k5": 0, "e_large": 0, "r2": 0, "s1": 0},
]


@pytest.fixture(scope="module")
def tiny_net():
  net = make_net(TINY, SIZE, 5)
  randomize(net)
  net.reset_margins()  # every decision on again with the new weights
  return net


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()) or "all")
def test_supernet_equals_child_and_cost_equals_flops(tiny_net, config):
  net = tiny_net
  for b in net.blocks:
    b.forced = {k: v for k, v in config.items() if k in b.decisions}
  try:
    arch = net.derive()
    child = autonl_tf.build_model(arch, (SIZE, SIZE, 3), 5, dropout_rate=0.0)
    copy_child_weights(net, child)
    x = np.random.default_rng(2).normal(size=(3, SIZE, SIZE, 3)).astype("float32")
    got, want = net(x, training=False).numpy(), child(x, training=False).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert float(net.macs()) == flops.count(arch, SIZE, 5).macs
    # The comparison is sensitive: perturbing one child weight changes it.
    w = child.get_layer("head_conv").kernel
    w.assign(w * 1.01)
    assert np.abs(child(x, training=False).numpy() - got).max() > 1e-4
  finally:
    for b in net.blocks:
      b.forced = {}
  blocks = arch.blocks[1:]
  if config.get("e_small") == 0:
    assert len(blocks) == 2  # both skippable blocks skipped
  if config.get("k5") == 0:
    assert all(b.kernel_sizes == (3,) for b in blocks)
  elif config.get("k7") == 0:
    assert all(b.kernel_sizes == (5,) for b in blocks)
  if config.get("nl") == 0:
    assert not any(b.has_nonlocal for b in blocks)
  elif "r1" in config or "r2" in config:
    assert {b.nl_ratio for b in blocks} == {0.125 if config.get("r1") == 0 else 0.25}
  if config.get("s1") == 0 and config.get("nl") != 0:
    assert {b.nl_stride for b in blocks} == {2}


def test_cost_gradients_reach_every_arch_variable_with_the_right_sign(tiny_net):
  net = tiny_net
  with tf.GradientTape() as tape:
    cost = tf.math.log(net.macs())
  grads = tape.gradient(cost, net.arch_variables)
  for v, g in zip(net.arch_variables, grads):
    assert g is not None and float(g) != 0, v.path
    name = v.path.split("arch_")[-1]
    # Thresholds: raising one removes an option (fewer MACs); LightNL logits:
    # raising one picks the larger ratio / stride 1 (more MACs).
    if name in ("k5", "k7", "e_small", "e_large", "nl"):
      assert float(g) < 0, v.path
    else:
      assert float(g) > 0, v.path


def _random_gate_state(net, rng):
  """Every decision of every block on or off at random, at a margin of
  0.05-0.6 from its threshold (LightNL logits: from 0)."""
  for b in net.blocks:
    margins = b.margins()
    for d, var in b.arch_vars.items():
      m = rng.uniform(0.05, 0.6) * rng.choice([-1.0, 1.0])
      value = float(var.numpy()) + margins[d] if d in THRESHOLDS else 0.0
      var.assign(value - m if d in THRESHOLDS else m)


def _random_net(seed, **fields):
  """The tiny supernet (`fields` its `SearchConfig` fields) built under
  `seed`, with random weights of seed `seed + 1`."""
  keras.utils.set_random_seed(seed)
  net = make_net(TINY, SIZE, 5, **fields)
  randomize(net, seed=seed + 1)
  return net


def _sigmoid_prime(x):
  s = 1 / (1 + np.exp(-x))
  return s * (1 - s)


@pytest.mark.parametrize("space_name,size", [("tiny", SIZE), ("autonl-imagenet", 224)])
def test_cost_gradient_equals_the_closed_form(space_name, size):
  # d MACs / d arch variable = (MACs with that decision on - off, all other
  # decisions as they are) * sigmoid'(margin), negated for thresholds; the
  # MACs of both states from the analytic counter of the derived block.
  from autonl_tf.search import get_space
  space = TINY if space_name == "tiny" else get_space(space_name)
  keras.utils.set_random_seed(3)
  net = make_net(space, size, 10)
  saved = {v.path: v.numpy() for v in net.arch_variables}
  try:
    rng = np.random.default_rng(4)
    _random_gate_state(net, rng)
    with tf.GradientTape() as tape:
      macs = net.macs()
    grads = dict(zip([v.path for v in net.arch_variables],
                     tape.gradient(macs, net.arch_variables)))
    checked = 0
    for b in net.blocks[:: 1 if space_name == "tiny" else 4]:
      margins = b.margins()
      for d, var in b.arch_vars.items():
        counts = []
        for state in (1, 0):  # only this block changes: count it alone
          b.forced = {d: state}
          spec = block_spec(b)
          counts.append(0 if spec is None else flops.count_block(spec, *b.hw).macs)
        b.forced = {}
        want = (counts[0] - counts[1]) * _sigmoid_prime(margins[d])
        want = -want if d in THRESHOLDS else want
        assert float(grads[var.path]) == pytest.approx(want, rel=1e-4, abs=1e-3), (b.name, d)
        checked += counts[0] != counts[1]
    assert checked >= 5  # decisions whose toggle changes the MACs, not only nested-off ones
  finally:
    for v in net.arch_variables:
      v.assign(saved[v.path])


#: Decisions on which a block's inference-mode output is multilinear: the
#: residual and LightNL gates scale a branch, the ratio steps mask query
#: channels, the stride picks between two products, and everything after
#: them up to the block's output is linear (the depthwise conv) or affine (BN
#: with its moving statistics). Kernel gates sit before BN and swish: for them
#: a straight-through gradient is an estimate, not a closed form; the expansion
#: gate sits after them but before SE and LightNL (its own test below).
LINEAR_DECISIONS = ("e_small", "nl", "r1", "r2", "s1")


def _block_probe(b, rng):
  """<w, the block's inference-mode output> for random input x and weights w."""
  x = tf.constant(rng.normal(size=(2,) + b.hw + (b.in_filters,)).astype("float32"))
  w = tf.constant(rng.normal(size=(2,) + b.out_hw + (b.out_filters,)).astype("float32"))
  return lambda: tf.reduce_sum(w * b(x, training=False))


def _toggle_gradient(b, probe, decision, margin, others=None):
  """The closed form of d probe / d (the decision's arch variable) where the
  probe is linear in its gate: (probe with it on - off, the gates `others`
  forced) * sigmoid'(margin), negated for thresholds; and the two ends.
  Leaves `others` forced."""
  ends = []
  for state in (1, 0):
    b.forced = dict(others or {}, **{decision: state})
    ends.append(float(probe()))
  b.forced = dict(others or {})
  want = (ends[0] - ends[1]) * _sigmoid_prime(margin)
  return (-want if decision in THRESHOLDS else want), ends


@pytest.mark.parametrize("decision_value", DECISION_VALUES)
def test_output_gradient_equals_the_closed_form(decision_value):
  # d <w, block output> / d arch variable = (<w, output> with the decision on
  # - off, the others as they are) * sigmoid'(margin), negated for thresholds,
  # on random weights and a random, per-block different gate state.
  net = _random_net(5, decision_value=decision_value)
  rng = np.random.default_rng(7)
  _random_gate_state(net, rng)
  checked = 0
  for b in net.blocks:
    probe = _block_probe(b, rng)
    decisions = [d for d in LINEAR_DECISIONS if d in b.arch_vars]
    with tf.GradientTape() as tape:
      value = probe()
    grads = tape.gradient(value, [b.arch_vars[d] for d in decisions])
    margins = b.margins()
    for d, grad in zip(decisions, grads):
      want, _ = _toggle_gradient(b, probe, d, margins[d])
      got = 0.0 if grad is None else float(grad)
      assert got == pytest.approx(want, rel=1e-3, abs=1e-4), (b.name, d, got, want)
      checked += abs(want) > 1e-3
  assert checked >= 5  # decisions whose toggle changes the output, not only nested-off ones


@pytest.mark.parametrize("decision_value", DECISION_VALUES)
def test_expansion_gate_gradient_is_its_channels_effect(decision_value):
  # The expansion mask is applied once, after the depthwise conv's BN and
  # activation: without SE and with LightNL off, a block's inference-mode
  # output is then linear in it, and `e_large`'s straight-through gradient is
  # exactly (output with the channels on - off) * sigmoid'(margin), negated
  # (a threshold), whether the gate is on or off. Masked twice (before the
  # depthwise conv too), an off gate's gradient saw act(BN(0)) instead of the
  # channels' output, and an on gate's counted the channels twice.
  net = _random_net(8, decision_value=decision_value)
  rng = np.random.default_rng(10)
  blocks = [b for b in net.blocks if b.se is None and "e_large" in b.arch_vars]
  assert len(blocks) == 2
  for b in blocks:
    probe = _block_probe(b, rng)
    var = b.arch_vars["e_large"]
    others = dict({"e_small": 1} if "e_small" in b.arch_vars else {}, nl=0)
    for margin in (0.3, -0.3):  # on, off
      var.assign(float(var.numpy()) + b.margins()["e_large"] - margin)
      assert b.margins()["e_large"] == pytest.approx(margin, abs=1e-5)
      want, ends = _toggle_gradient(b, probe, "e_large", margin, others)
      with tf.GradientTape() as tape:  # `others` still forced
        value = probe()
      grad = tape.gradient(value, var)
      b.forced = {}
      assert float(value) == pytest.approx(ends[0] if margin > 0 else ends[1], rel=1e-5)
      assert abs(want) > 1e-2, (b.name, margin)
      assert float(grad) == pytest.approx(want, rel=1e-3, abs=1e-5), (b.name, margin)


def test_the_weight_norms_a_decision_reads_are_invisible_to_the_loss():
  """Every kernel a `weight_norm` decision reads is followed by batch norm:
  scaling them all by 0.8 leaves the training-mode output unchanged (BN's
  epsilon made negligible) but moves every threshold margin by log 0.8, what weight decay
  does to them over a search, whatever each decision is worth. With
  `decision_value='logit'` the margins do not move."""
  x = tf.constant(np.random.default_rng(11).normal(size=(4, SIZE, SIZE, 3)).astype("float32"))
  for decision_value, shift in (("weight_norm", np.log(0.8)), ("logit", 0.0)):
    net = _random_net(12, decision_value=decision_value)
    net.reset_margins(1.0)  # far from flipping: the scaling turns nothing off
    for layer in net._flatten_layers():
      if isinstance(layer, keras.layers.BatchNormalization):
        layer.epsilon = 1e-9  # (with the paper's 1e-3, the smallest batch variances show it)
    before = net(x, training=True).numpy()
    margins = [b.margins() for b in net.blocks]
    for b in net.blocks:
      b.dw_kernel.assign(0.8 * b.dw_kernel)
      b.nl_dw.kernel.assign(0.8 * b.nl_dw.kernel)
    after = net(x, training=True).numpy()
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-4 * np.abs(before).max())
    for b, old in zip(net.blocks, margins):
      for d, m in b.margins().items():
        want = old[d] + (shift if d in THRESHOLDS else 0.0)
        assert m == pytest.approx(want, abs=1e-4), (decision_value, b.name, d)


def _fit(net, steps, epochs=1, batch=16, seed=0, callbacks=()):
  ds = make_dataset(DataConfig("synthetic", input_size=SIZE, num_classes=5, seed=seed,
                               deterministic=True), "train", batch, training=True)
  return net.fit(ds, steps_per_epoch=steps, epochs=epochs, verbose=0, callbacks=list(callbacks))


def test_strong_cost_shrinks_the_derived_network():
  keras.utils.set_random_seed(0)
  net = make_net(TINY, SIZE, 5, cost="log", lam=1.0)
  net.compile(keras.optimizers.RMSprop(0.01), keras.optimizers.SGD(0.05))
  net.search_phase.assign(1.0)
  before = flops.count(net.derive(), SIZE, 5).macs
  _fit(net, steps=15)
  after = flops.count(net.derive(), SIZE, 5).macs
  assert after < 0.5 * before


@pytest.mark.parametrize("decision_value", DECISION_VALUES)
def test_target_mode_lands_near_the_target(tmp_path, decision_value):
  keras.utils.set_random_seed(0)
  full = make_net(TINY, SIZE, 5)
  target = 0.6 * float(full.macs())
  net = make_net(TINY, SIZE, 5, cost="target", target_macs=target, lam=0.0, tolerance=0.05,
                 decision_value=decision_value)
  net.compile(keras.optimizers.RMSprop(0.01), keras.optimizers.SGD(0.05))
  net.search_phase.assign(1.0)
  # As tools/search.py: the landing records the visited states near the target.
  from autonl_tf.search.callbacks import LandingLog
  landing_log = LandingLog(epochs=3, supernet_warmup_epochs=0, tolerance=0.05)
  _fit(net, steps=20, epochs=3, callbacks=[landing_log])
  best = landing_log.visited.candidates(1)
  assert best, "no state within 5% of the target was visited"
  net.force_state(landing_log.visited.state(best[0]))
  try:
    derived = flops.count(net.derive(), SIZE, 5).macs
  finally:
    net.force_state(None)
  assert abs(derived / target - 1) <= 0.05, (derived, target)
  assert derived == landing_log.visited.values[best[0]]
  assert float(net.lam) != 0


def _one_step(strategy, x, y):
  keras.utils.set_random_seed(3)
  with strategy.scope():
    space = SearchSpace(name="t", stages=(Stage(16, 2, 1), Stage(16, 1, 2, 0.25)), stem_filters=8,
                        stem_stride=1, first_block="", head_filters=16)
    net = make_net(space, 8, 4, cost="target", target_macs=1e5, lam=0.1, sync_bn=True)
    net.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.05))
    net.search_phase.assign(1.0)
  ds = tf.data.Dataset.from_tensors((x, y))
  if isinstance(strategy, tf.distribute.MirroredStrategy):
    ds = strategy.experimental_distribute_dataset(ds)
  net.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
  return [v.numpy() for v in net.weights]


def test_mirrored_step_equals_single_device(mirrored):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(8, 8, 8, 3)).astype("float32")
  y = rng.integers(0, 4, 8).astype("int32")
  single = _one_step(tf.distribute.get_strategy(), x, y)
  mirrored = _one_step(mirrored, x, y)
  assert len(single) == len(mirrored)
  changed = 0
  for a, b in zip(single, mirrored):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  # ... and the step really moved weights, architecture variables and lambda.
  fresh = _fresh_values()
  changed = sum(not np.allclose(a, f) for a, f in zip(single, fresh))
  assert changed > 10


def _fresh_values():
  keras.utils.set_random_seed(3)
  space = SearchSpace(name="t", stages=(Stage(16, 2, 1), Stage(16, 1, 2, 0.25)), stem_filters=8,
                      stem_stride=1, first_block="", head_filters=16)
  net = make_net(space, 8, 4, cost="target", target_macs=1e5, lam=0.1, sync_bn=True)
  return [v.numpy() for v in net.weights]


def test_search_proper_starts_every_decision_on_one_line_with_a_fresh_arch_schedule(tmp_path):
  """When the search proper starts, `SearchPhase` puts every margin at
  `margin` and restarts the architecture optimizer's counter, whose cosine
  spans the search epochs only: arch_lr at its first step, 0 at its last."""
  from autonl_tf.search.callbacks import SearchPhase
  from autonl_tf.search.runner import SearchConfig, build_supernet
  data = DataConfig("synthetic", input_size=SIZE, num_classes=5)
  for warmup in (0, 2):
    config = SearchConfig(space=TINY, data=data, model_dir=str(tmp_path), epochs=5,
                          supernet_warmup_epochs=warmup, arch_lr=0.5, margin=0.25)
    net = build_supernet(config, 5, steps_per_epoch=10)
    for b in net.blocks:  # margins moved by a warm-up
      for v in b.arch_vars.values():
        v.assign_add(np.random.default_rng(0).uniform(-1, 1))
    net.arch_optimizer.iterations.assign(10 * warmup + 3)
    phase = SearchPhase(warmup, 0.1)
    phase.set_model(net)
    phase.on_epoch_begin(warmup)
    assert int(net.arch_optimizer.iterations.numpy()) == 0
    margins = [m for b in net.blocks for m in b.margins().values()]
    np.testing.assert_allclose(margins, 0.25, atol=1e-5)
    assert float(net.search_phase.numpy()) == 1.0 and float(net.dropout_var.numpy()) == 0.0
    lr = net.arch_optimizer._learning_rate
    schedule = lambda step: float(lr(step))
    end = 10 * (5 - warmup)
    assert schedule(0) == pytest.approx(0.5)
    mid = end // 2 + 1
    assert schedule(mid) == pytest.approx(0.5 * 0.5 * (1 + np.cos(np.pi * mid / end)))
    assert schedule(end - 1) > 0 and schedule(end) == pytest.approx(0.0, abs=1e-7)


def test_weight_decay_reaches_the_superkernel(tiny_net):
  from autonl_tf.training.losses import apply_weight_decay, decayed_variables
  decayed = decayed_variables(tiny_net)
  superkernels = [b.dw_kernel for b in tiny_net.blocks]
  assert all(any(v is k for v in decayed) for k in superkernels)
  assert not any("arch_" in v.path or "gamma" in v.path for v in decayed)
  apply_weight_decay(tiny_net, 1e-2)
  try:
    want = 1e-2 / 2 * sum(float(np.sum(np.square(v.numpy()))) for v in decayed)
    assert float(tf.add_n(tiny_net.losses)) == pytest.approx(want, rel=1e-5)
    assert want > 1e-2 / 2 * sum(float(np.sum(np.square(k.numpy()))) for k in superkernels) > 0
  finally:
    apply_weight_decay(tiny_net, 0.0)


def test_width_multiplier_scales_the_supernet_and_its_cost(tmp_path):
  """`SearchConfig.width_multiplier` builds the scaled space: every derived
  network is the unscaled one's `scale_width`, and the differentiable cost
  is that network's exact MAC count."""
  from autonl_tf import arch as arch_lib
  from autonl_tf.search.runner import SearchConfig, make_supernet
  data = DataConfig("synthetic", input_size=SIZE, num_classes=5)
  nets = [make_supernet(SearchConfig(space=TINY, data=data, model_dir=str(tmp_path),
                                     width_multiplier=w), 5) for w in (1.0, 2.0)]
  assert [s.channels for s in nets[1].space.stages] == [32, 48]
  assert (nets[1].space.stem_filters, nets[1].space.head_filters) == (16, 64)
  rng = np.random.default_rng(0)
  for _ in range(4):
    bits = [int(b) for b in rng.integers(0, 2, len(nets[0].decision_names))]
    for net in nets:
      net.force_state(dict(zip(net.decision_names, bits)))
    wide = nets[1].derive()
    assert wide == arch_lib.scale_width(nets[0].derive(), 2.0)
    assert float(nets[1].macs()) == flops.count(wide, SIZE, 5).macs


@pytest.fixture(scope="module")
def half_cifar_net():
  from autonl_tf.search import get_space
  net = make_net(get_space("cifar", width_multiplier=0.5), 32, 10)
  randomize(net)
  return net


def test_hand_network_is_in_the_cifar_space(half_cifar_net):
  """autonl-s-cifar at x0.5 is one of the `cifar` space's networks at x0.5:
  its arch is a choice of the space's decisions (`decision_state`), the
  supernet forced to it derives exactly that arch, costs its MACs and
  computes the hand network's outputs (its weights copied into the child)."""
  from autonl_tf.arch import format_arch, load, scale_width
  from autonl_tf.search.derive import decision_state
  hand = scale_width(load("autonl-s-cifar"), 0.5)
  assert len(hand.blocks) == 18  # the fixed first block and 17 searchable ones
  net = half_cifar_net
  state = decision_state(net, hand)
  # Every stage has its full depth in the hand network: no position skipped.
  assert len(net.blocks) == 17 and all(state[f"{b.name}/e_small"] == 1 for b in net.blocks
                                       if b.skippable)
  net.force_state(state)
  try:
    assert format_arch(net.derive()) == format_arch(hand)
    assert float(net.macs()) == flops.count(hand, 32, 10).macs == 24_332_288
    child = autonl_tf.build_model(hand, (32, 32, 3), 10, dropout_rate=0.0)
    copy_child_weights(net, child)
    x = np.random.default_rng(3).normal(size=(2, 32, 32, 3)).astype("float32")
    got, want = net(x, training=False).numpy(), child(x, training=False).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert np.abs(want).max() > 1e-2  # not a trivially zero output
  finally:
    net.force_state(None)


def test_a_network_outside_the_space_is_named(half_cifar_net):
  from autonl_tf.arch import load, scale_width
  from autonl_tf.search.derive import decision_state
  net = half_cifar_net
  # AutoNL-L's CIFAR network has four 40-channel blocks where the space has three.
  with pytest.raises(ValueError, match=r"^the architecture is not in the space 'cifar': at block "
                     r"4 \(r1_k3_s11_e3_i16_o16_nonlocal0.25-2\) the space has a 16->24 "
                     r"stride-2 block that cannot be skipped$"):
    decision_state(net, scale_width(load("autonl-l-cifar"), 0.5))
  # A 9x9 kernel is no option of any block.
  hand = scale_width(load("autonl-s-cifar"), 0.5)
  blocks = list(hand.blocks)
  blocks[3] = dataclasses.replace(blocks[3], kernel_sizes=(9,))
  with pytest.raises(ValueError, match=r"its block 4 \(r1_k9_s22_e3_i16_o24_nonlocal0.25\) is "
                     r"no option of the space's 16->24 stride-2 block \(kernels \(3, 5, 7\)"):
    decision_state(net, dataclasses.replace(hand, blocks=tuple(blocks)))
  with pytest.raises(ValueError, match=r"head_filters=1280 \(the space's: 640\)"):
    decision_state(net, dataclasses.replace(hand, head_filters=1280))
