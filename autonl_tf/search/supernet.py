"""`SuperNet`: the searchable network (a `keras.Model`) and its NAS
objective in a custom `train_step` (arXiv 2004.01961, section 4, "Neural
Architecture Search for Lightweight Non-Local Networks"; Single-Path NAS,
arXiv 1904.02877).

The weights step on cross-entropy + weight decay. Every architecture
variable (a threshold or logit per decision) steps on the sum of two forces
brought to one scale (`search.cost`): the cross-entropy's straight-through
gradient, what the decision is worth to the loss, and the cost's gradient,
the decision's MAC delta (or its latency delta from a LiteRT latency
table, `cost_model='latency'`), times the price lambda:

  force = g_ce / rms(g_ce) + lambda * g_cost / rms(g_cost),

each divided by the root of a running mean, over steps, of its mean square
over all decisions (one scale per force, so that decisions keep their
relative sizes: a decision flips off when its MAC share, priced at lambda,
outweighs its worth, and the least useful MACs go first). The architecture
optimizer is plain SGD on that force. During warm-up
(`search_phase == 0`) the architecture is frozen, gates are dropped at
random and no cost is paid.
"""

import keras
import tensorflow as tf

from autonl_tf import constants
from autonl_tf.layers import activations
from autonl_tf.layers import batch_norm
from autonl_tf.layers.mbconv import MBConv
from autonl_tf.search import choices
from autonl_tf.search import cost as cost_lib
from autonl_tf.search import derive as derive_lib
from autonl_tf.search import pieces as pieces_lib
from autonl_tf.search.blocks import SuperMBConv
from autonl_tf.search.space import SearchSpace


class SuperNet(keras.Model):
  """The single-path supernet of a `SearchSpace`.

  Every argument is required: the defaults live in one place,
  `search.runner.SearchConfig` (`runner.make_supernet` builds from it).

  Args:
    space: the search space.
    input_size: image height and width.
    num_classes: classifier width.
    cost: `log` or `target` (`search.cost`).
    cost_model: what is priced, `macs` or `latency` (`search.cost`).
    target_macs: the budget of `target` mode with `cost_model='macs'`.
    target_latency_ms: the budget of `target` mode with
      `cost_model='latency'` (predicted ms).
    latency_table: a `latency.LatencyTable` of this space, input size and
      classes (required with `cost_model='latency'`; else optional, for
      `latency()`).
    lam: lambda, the price of the cost relative to the cross-entropy's force
      (its start value in `target` mode).
    dual_lr: lambda's step in `target` mode.
    tolerance: the relative band around the target inside which lambda holds.
    penalty: the proportional part of the price in `target` mode,
      `penalty * (MACs / target - 1)` added to lambda.
    margin: every decision's distance from flipping when the search starts
      (`reset_margins`).
    decision_value: what a threshold decision compares with its threshold
      (`choices.DECISION_VALUES`): `weight_norm`, the log RMS of its weights
      (Single-Path NAS), or `logit`, nothing (see `blocks`).
    gate_dropout: probability of dropping each optional gate in warm-up.
    label_smoothing: of the cross-entropy.
    dropout_rate: before the classifier.
    sync_bn: batch statistics over all replicas (the fixed first block keeps
      per-replica BN).
  """

  def __init__(self, space: SearchSpace, input_size, num_classes, *, cost, cost_model,
               target_macs, target_latency_ms, latency_table, lam, dual_lr, tolerance, penalty,
               margin, decision_value, gate_dropout, label_smoothing, dropout_rate, sync_bn,
               **kwargs):
    super().__init__(**kwargs)
    choices.check("cost", cost)
    choices.check("cost_model", cost_model)
    if cost_model == "latency" and latency_table is None:
      raise ValueError("cost_model='latency' needs a latency table")
    budget = target_macs if cost_model == "macs" else target_latency_ms
    if cost == "target" and not budget:
      raise ValueError(f"cost='target' needs "
                       f"{'target_macs' if cost_model == 'macs' else 'target_latency_ms'}")
    self.space = space
    self.input_size = int(input_size)
    self.num_classes = int(num_classes)
    self.cost_mode = cost
    self.cost_model = cost_model
    self.target_macs = float(target_macs or 0)
    self.target_latency_ms = float(target_latency_ms or 0)
    self.dual_lr = float(dual_lr)
    self.tolerance = float(tolerance)
    self.penalty = float(penalty)
    self.margin = float(margin)
    self.gate_dropout = float(gate_dropout)
    self.label_smoothing = float(label_smoothing)
    init = constants.conv_initializer()
    self.stem_conv = keras.layers.Conv2D(space.stem_filters, 3, strides=space.stem_stride,
                                         padding="same", use_bias=False, kernel_initializer=init,
                                         name="stem_conv")
    self.stem_bn = batch_norm.paper_batch_norm("stem_bn", synchronized=sync_bn)
    self._act = activations.get(space.activation)
    self.first = (MBConv(space.first_block, activation=space.activation, nl_norm=space.nl_norm,
                         name="block_first")
                  if space.first_block else None)
    self.blocks = []
    for i, (si, bi, cin, cout, stride, se, skippable) in enumerate(space.blocks()):
      self.blocks.append(SuperMBConv(
          cin, cout, stride, se, skippable, space.kernel_sizes, space.expand_ratios,
          space.nl_ratios, space.nl_strides, sync_bn=sync_bn, activation=space.activation,
          nl_norm=space.nl_norm, decision_value=decision_value, name=f"sblock_{i}"))
    self.head_conv = keras.layers.Conv2D(space.head_filters, 1, use_bias=False,
                                         kernel_initializer=init, name="head_conv")
    self.head_bn = batch_norm.paper_batch_norm("head_bn", synchronized=sync_bn)
    self.pool = keras.layers.GlobalAveragePooling2D(name="avg_pool")
    self.dropout = keras.layers.Dropout(dropout_rate) if dropout_rate > 0 else None
    self.classifier = keras.layers.Dense(num_classes, kernel_initializer=constants.dense_initializer(),
                                         dtype="float32", name="logits")
    self.lam = self.add_weight(name="lambda", shape=(), trainable=False,
                               initializer=keras.initializers.Constant(lam),
                               aggregation="only_first_replica")
    self.search_phase = self.add_weight(name="search_phase", shape=(), trainable=False,
                                        initializer="zeros", aggregation="only_first_replica")
    # Running mean squares of the two forces on the architecture (`_normalised`).
    self.ce_force_ms = self.add_weight(name="ce_force_ms", shape=(), trainable=False,
                                       initializer="zeros", aggregation="only_first_replica")
    self.cost_force_ms = self.add_weight(name="cost_force_ms", shape=(), trainable=False,
                                         initializer="zeros", aggregation="only_first_replica")
    self.dropout_var = self.add_weight(name="gate_dropout_rate", shape=(), trainable=False,
                                       initializer="zeros", aggregation="only_first_replica")
    for b in self.blocks:
      b.dropout_rate = self.dropout_var
    self.arch_optimizer = None
    tracked = ("loss", "ce", "macs") + (("latency_ms",) if cost_model == "latency" else ()) + \
        ("lambda",)
    self._trackers = {n: keras.metrics.Mean(name=n) for n in tracked}
    self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    self(tf.zeros((1, input_size, input_size, 3)), training=False)  # creates every weight
    self._fixed_macs = cost_lib.fixed_macs(space, self.input_size, self.num_classes,
                                           self.blocks[-1].out_hw)
    self._trace_fn = None
    self._block_ms = None
    if latency_table is not None:
      self.attach_latency_table(latency_table)
    self.reset_margins()

  def call(self, x, training=None):
    x = self._act(self.stem_bn(self.stem_conv(x), training=training))
    if self.first is not None:
      x = self.first(x, training=training)
    for b in self.blocks:
      x = b(x, training=training)
    x = self._act(self.head_bn(self.head_conv(x), training=training))
    x = self.pool(x)
    if self.dropout is not None:
      x = self.dropout(x, training=training)
    return self.classifier(x)

  # ------------------------------------------------------- architecture --
  def macs(self):
    """Differentiable MACs of the current hard architecture."""
    return self._fixed_macs + tf.add_n([cost_lib.block_macs(b, b.raw_gates(False))
                                        for b in self.blocks])

  def attach_latency_table(self, table):
    """Reads this supernet's entries from a `latency.LatencyTable` (of its
    space, input size and classes): then `latency()` is the differentiable
    predicted latency of the current hard architecture."""
    options = pieces_lib.space_block_pieces(self.space, self.input_size)
    self._block_ms = [{option: table.ms(piece) for option, piece in o.items()} for o in options]
    fixed = pieces_lib.space_fixed_pieces(self.space, self.input_size, self.num_classes)
    self._fixed_ms = table.overhead() + sum(table.ms(p) for p in fixed)

  def latency(self):
    """Differentiable predicted ms of the current hard architecture (after
    `attach_latency_table`): the table's sum for the derived network."""
    if self._block_ms is None:
      raise ValueError("no latency table: call attach_latency_table first")
    return self._fixed_ms + tf.add_n([cost_lib.block_latency(b, b.raw_gates(False), ms)
                                      for b, ms in zip(self.blocks, self._block_ms)])

  @property
  def cost_unit(self):
    """The priced quantity's name in logs: `macs` or `latency_ms`."""
    return "macs" if self.cost_model == "macs" else "latency_ms"

  @property
  def target(self):
    """The budget of `target` mode in the cost model's unit (0: none)."""
    return self.target_macs if self.cost_model == "macs" else self.target_latency_ms

  def budget_value(self):
    """Differentiable priced quantity of the current hard architecture:
    `macs()` or `latency()`."""
    return self.macs() if self.cost_model == "macs" else self.latency()

  def reset_margins(self, margin=None):
    """Every decision of every block `margin` (default: the constructor's)
    above its flipping point: the search's common starting line."""
    for b in self.blocks:
      b.reset_margins(self.margin if margin is None else margin)

  @property
  def decision_names(self):
    """`<block>/<decision>` of every searched decision, in a fixed order."""
    return [f"{b.name}/{d}" for b in self.blocks for d in b.decisions]

  def trace(self):
    """(margins, bits, cost): every decision's `value - threshold` (> 0: on)
    and raw 0/1 gate (forcing applied) in `decision_names` order, and the
    priced quantity (`budget_value`: MACs or ms), from one compiled function
    (cheap enough to call every step)."""
    if self._trace_fn is None:
      def fn():
        margins, bits = [], []
        for b in self.blocks:
          out = {}
          g = b.raw_gates(False, out)
          margins += [out[d] for d in b.decisions]
          bits += [g[d] for d in b.decisions]
        return tf.stack(margins), tf.stack(bits), self.budget_value()
      self._trace_fn = tf.function(fn)
    margins, bits, macs = self._trace_fn()
    return margins.numpy(), bits.numpy().astype(int), float(macs)

  def force_state(self, state):
    """Forces every decision to `state` ({`<block>/<decision>`: 0/1}; None:
    lifts every forcing). Retraces the compiled step / test functions."""
    state = state or {}
    for b in self.blocks:
      b.forced = {d: state[f"{b.name}/{d}"] for d in b.decisions if f"{b.name}/{d}" in state}
    self._trace_fn = None
    self.train_function = self.test_function = self.predict_function = None

  @property
  def arch_variables(self):
    return [v for b in self.blocks for v in b.arch_vars.values()]

  @property
  def weight_variables(self):
    arch_ids = {id(v) for v in self.arch_variables}
    return [v for v in self.trainable_variables if id(v) not in arch_ids]

  # ------------------------------------------------------------- training --
  def compile(self, optimizer, arch_optimizer, **kwargs):
    if self.dtype_policy.name == "mixed_float16" and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer):
      optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    super().compile(optimizer=optimizer, **kwargs)
    self.arch_optimizer = arch_optimizer
    # Built now, each over its own variables: BackupAndRestore would
    # otherwise build the weight optimizer over every trainable variable
    # (arch variables included), the saved optimizer state would not match
    # it, and a resumed search would restart its step counter, learning-rate
    # schedule and RMSProp accumulators.
    self.optimizer.build(self.weight_variables)
    self.arch_optimizer.build(self.arch_variables)

  @property
  def metrics(self):
    return list(self._trackers.values()) + [self._accuracy]

  def _normalised(self, grads, mean_square):
    """`grads` divided by the root of a running mean (over steps) of their
    mean square over every architecture variable — one scale shared by all
    decisions, so their relative sizes survive; the running mean starts at
    the first search step's value and only moves in the search proper."""
    searched = sum(1 for b in self.blocks for d in b.decisions if d not in b.forced)
    sq = tf.add_n([tf.square(g) for g in grads]) / max(1, searched)
    rho = cost_lib.FORCE_AVERAGING
    new = tf.where(mean_square > 0, rho * mean_square + (1 - rho) * sq, sq)
    new = tf.where(self.search_phase > 0, new, mean_square)
    mean_square.assign(new)
    scale = tf.where(new > 0, tf.math.rsqrt(tf.maximum(new, 1e-30)), 0.0)
    return [g * scale for g in grads]

  def train_step(self, data):
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
      logits = self(x, training=True)
      labels = tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), self.num_classes)
      ce = tf.reduce_mean(keras.losses.categorical_crossentropy(
          labels, logits, from_logits=True, label_smoothing=self.label_smoothing))
      decay = tf.add_n(self.losses) if self.losses else 0.0
      # Per-replica mean, summed over replicas by the optimizers' all-reduce;
      # times the loss scale under mixed_float16 (LossScaleOptimizer).
      scaled = self.optimizer.scale_loss((ce + decay) / replicas)
    with tf.GradientTape() as cost_tape:  # depends on the architecture only
      value = self.budget_value()
      cost = cost_lib.cost_term(self.cost_mode, value, self.target)
    weights, arch = self.weight_variables, self.arch_variables
    grads = tape.gradient(scaled, weights + arch)
    # The architecture gradients carry the loss scale too: undo it (read
    # before the weight step, which may change the scale), and skip the step
    # when they overflowed (as the loss-scale optimizer does).
    unscale = 1.0 / tf.cast(self.optimizer.scale_loss(tf.constant(1.0)), tf.float32)
    self.optimizer.apply(grads[:len(weights)], weights)
    ce_grads = [tf.zeros_like(v) if g is None else tf.cast(g, tf.float32) * unscale
                for g, v in zip(grads[len(weights):], arch)]
    context = tf.distribute.get_replica_context()
    if replicas > 1 and context is not None:  # the global gradient before normalising
      ce_grads = context.all_reduce("sum", ce_grads)
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in ce_grads])
    ce_grads = [tf.where(finite, g, tf.zeros_like(g)) for g in ce_grads]
    cost_grads = [tf.zeros_like(v) if g is None else g
                  for g, v in zip(cost_tape.gradient(cost, arch), arch)]
    # Forced decisions are not searched: no force on them, nor in the scales.
    free = [float(d not in b.forced) for b in self.blocks for d in b.decisions]
    ce_grads = [g * f for g, f in zip(ce_grads, free)]
    cost_grads = [g * f for g, f in zip(cost_grads, free)]
    price = cost_lib.price(self.cost_mode, self.lam, value, self.target, self.penalty)
    force = [c + price * k for c, k in zip(self._normalised(ce_grads, self.ce_force_ms),
                                           self._normalised(cost_grads, self.cost_force_ms))]
    # Every replica holds the same force; the optimizer sums over replicas.
    self.arch_optimizer.apply([f * self.search_phase / replicas for f in force], arch)
    if self.cost_mode == "target":
      self.lam.assign_add(self.search_phase * cost_lib.dual_step(
          value, self.target, self.dual_lr, self.tolerance))
    loss = ce + decay + self.search_phase * price * cost
    self._track(loss=loss, ce=ce, priced=value)
    self._accuracy.update_state(y, logits)
    return {m.name: m.result() for m in self.metrics}

  def _track(self, loss, ce, priced):
    """Updates the trackers from a step's values (`priced`: its
    `budget_value`)."""
    values = {"loss": loss, "ce": ce, "lambda": self.lam, self.cost_unit: priced}
    if self.cost_model != "macs":
      values["macs"] = self.macs()
    for name, value in values.items():
      self._trackers[name].update_state(value)

  def test_step(self, data):
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    logits = self(x, training=False)
    labels = tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), self.num_classes)
    ce = tf.reduce_mean(keras.losses.categorical_crossentropy(labels, logits, from_logits=True))
    self._track(loss=ce, ce=ce, priced=self.budget_value())
    self._accuracy.update_state(y, logits)
    return {m.name: m.result() for m in self.metrics}

  # ------------------------------------------------------------ derivation --
  def derive(self):
    """The current hard architecture as an `Arch` (`search.derive`)."""
    return derive_lib.derive_arch(self)

  def decisions(self):
    """{block: {decision: {gate, arch_var, margin}}} of the hard architecture
    (`gate` as the architecture has it: nested decisions multiplied in)."""
    out = {}
    for b in self.blocks:
      g, m = b.gates(False), b.margins()
      out[b.name] = {d: {"gate": float(g[d]), "arch_var": float(b.arch_vars[d].numpy()),
                         "margin": m[d]} for d in b.decisions}
    return out
