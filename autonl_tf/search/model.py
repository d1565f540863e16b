"""`SuperNet`: the searchable network and its NAS objective in a custom
`train_step` (arXiv 2004.01961, section 4, "Neural Architecture Search for
Lightweight Non-Local Networks").

loss = cross-entropy + weight decay + cost, with cost
  * `log`:    lambda * log(MACs)                      (Single-Path NAS / AutoNL)
  * `target`: lambda * c + rho/2 * c^2 with c = MACs / target - 1, the
    augmented Lagrangian of the equality
    constraint MACs = target; lambda follows dual ascent,
    lambda += dual_lr * (MACs / target - 1) after every step: it grows while
    the network is too big and turns negative (pushing MACs up) when it is
    too small, so the derived network settles at the target without
    hand-tuning lambda.
Weights and architecture variables have their own optimizers. During warm-up
(`search_phase == 0`) the cost is off, architecture variables are frozen and
gates are dropped at random.
"""

import keras
import tensorflow as tf

from autonl_tf import arch as arch_lib
from autonl_tf import constants
from autonl_tf import flops
from autonl_tf.layers.mbconv import MBConv
from autonl_tf.search.space import SearchSpace
from autonl_tf.search.supernet import SuperMBConv


class SuperNet(keras.Model):
  """The single-path supernet of a `SearchSpace`.

  Args:
    space: the search space.
    input_size: image height and width.
    num_classes: classifier width.
    cost: `log` or `target`.
    target_macs: the budget of `target` mode.
    lam: lambda (initial value in `target` mode).
    dual_lr: step of lambda's dual ascent.
    penalty: weight rho of the augmented Lagrangian term rho/2 (MACs/target - 1)^2
      (immediate feedback that damps the oscillation of pure dual ascent).
    gate_dropout: probability of dropping each optional gate in warm-up.
    label_smoothing: of the cross-entropy.
    dropout_rate: before the classifier.
    sync_bn: batch statistics over all replicas (the fixed first block keeps
      per-replica BN).
  """

  def __init__(self, space: SearchSpace, input_size=224, num_classes=1000, cost="log",
               target_macs=None, lam=0.02, dual_lr=0.01, penalty=1.0, gate_dropout=0.1,
               label_smoothing=0.0,
               dropout_rate=0.0, sync_bn=False, **kwargs):
    super().__init__(**kwargs)
    if cost not in ("log", "target"):
      raise ValueError(f"cost must be 'log' or 'target', got '{cost}'")
    if cost == "target" and not target_macs:
      raise ValueError("cost='target' needs target_macs")
    self.space = space
    self.input_size = int(input_size)
    self.num_classes = int(num_classes)
    self.cost_mode = cost
    self.target_macs = float(target_macs or 0)
    self.dual_lr = float(dual_lr)
    self.penalty = float(penalty)
    self.gate_dropout = float(gate_dropout)
    self.label_smoothing = float(label_smoothing)
    init = constants.conv_initializer()
    self.stem_conv = keras.layers.Conv2D(space.stem_filters, 3, strides=space.stem_stride,
                                         padding="same", use_bias=False, kernel_initializer=init,
                                         name="stem_conv")
    self.stem_bn = constants.batch_norm("stem_bn", synchronized=sync_bn)
    self.first = MBConv(space.first_block, name="block_first") if space.first_block else None
    self.blocks = []
    for i, (si, bi, cin, cout, stride, se, skippable) in enumerate(space.blocks()):
      self.blocks.append(SuperMBConv(
          cin, cout, stride, se, skippable, space.kernel_sizes, space.expand_ratios,
          space.nl_ratios, space.nl_strides, sync_bn=sync_bn, name=f"sblock_{i}"))
    self.head_conv = keras.layers.Conv2D(space.head_filters, 1, use_bias=False,
                                         kernel_initializer=init, name="head_conv")
    self.head_bn = constants.batch_norm("head_bn", synchronized=sync_bn)
    self.pool = keras.layers.GlobalAveragePooling2D(name="avg_pool")
    self.dropout = keras.layers.Dropout(dropout_rate) if dropout_rate > 0 else None
    self.classifier = keras.layers.Dense(num_classes, kernel_initializer=constants.dense_initializer(),
                                         dtype="float32", name="logits")
    self.lam = self.add_weight(name="lambda", shape=(), trainable=False,
                               initializer=keras.initializers.Constant(lam),
                               aggregation="only_first_replica")
    self.search_phase = self.add_weight(name="search_phase", shape=(), trainable=False,
                                        initializer="zeros", aggregation="only_first_replica")
    self.dropout_var = self.add_weight(name="gate_dropout_rate", shape=(), trainable=False,
                                       initializer="zeros", aggregation="only_first_replica")
    for b in self.blocks:
      b.dropout_rate = self.dropout_var
    self.arch_optimizer = None
    self._trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "ce", "macs", "lambda")}
    self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    self(tf.zeros((1, input_size, input_size, 3)), training=False)  # creates every weight
    self._fixed_macs = self._count_fixed_macs()

  def call(self, x, training=None):
    x = tf.nn.silu(self.stem_bn(self.stem_conv(x), training=training))
    if self.first is not None:
      x = self.first(x, training=training)
    for b in self.blocks:
      x = b(x, training=training)
    x = tf.nn.silu(self.head_bn(self.head_conv(x), training=training))
    x = self.pool(x)
    if self.dropout is not None:
      x = self.dropout(x, training=training)
    return self.classifier(x)

  # ------------------------------------------------------------------ cost --
  def _count_fixed_macs(self):
    """Stem + fixed first block + head: what no decision changes."""
    s = self.space
    size = flops.same_out_size(self.input_size, s.stem_stride)
    macs = flops.conv_macs(3, 3, s.stem_filters, size, size)
    if s.first_block:
      macs += flops.count_block(arch_lib.parse_block(s.first_block), size, size).macs
    h, w = self.blocks[-1].out_hw
    c = s.stages[-1].channels
    return macs + flops.conv_macs(1, c, s.head_filters, h, w) + h * w * s.head_filters + \
        s.head_filters * self.num_classes

  def macs(self):
    """Differentiable MACs of the current hard architecture."""
    return self._fixed_macs + tf.add_n([b.macs() for b in self.blocks])

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

  def _cost(self, macs):
    if self.cost_mode == "log":
      return self.lam * tf.math.log(macs)
    c = macs / self.target_macs - 1.0
    return self.lam * c + 0.5 * self.penalty * tf.square(c)

  def train_step(self, data):
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
      logits = self(x, training=True)
      labels = tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), self.num_classes)
      ce = tf.reduce_mean(keras.losses.categorical_crossentropy(
          labels, logits, from_logits=True, label_smoothing=self.label_smoothing))
      decay = tf.add_n(self.losses) if self.losses else 0.0
      macs = self.macs()
      cost = self.search_phase * self._cost(macs)
      loss = ce + decay + cost
      # Per-replica mean, summed over replicas by the optimizers' all-reduce;
      # times the loss scale under mixed_float16 (LossScaleOptimizer).
      scaled = self.optimizer.scale_loss(loss / replicas)
    weights, arch = self.weight_variables, self.arch_variables
    grads = tape.gradient(scaled, weights + arch)
    # The architecture gradients carry the loss scale too: undo it (read
    # before the weight step, which may change the scale), and skip the step
    # when they overflowed (as the loss-scale optimizer does).
    unscale = 1.0 / tf.cast(self.optimizer.scale_loss(tf.constant(1.0)), tf.float32)
    self.optimizer.apply(grads[:len(weights)], weights)
    arch_grads = [tf.zeros_like(v) if g is None else tf.cast(g, tf.float32) * unscale
                  for g, v in zip(grads[len(weights):], arch)]
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in arch_grads])
    arch_grads = [tf.where(finite, g, tf.zeros_like(g)) * self.search_phase for g in arch_grads]
    self.arch_optimizer.apply(arch_grads, arch)
    if self.cost_mode == "target":
      step = self.search_phase * self.dual_lr * (macs / self.target_macs - 1.0)
      self.lam.assign_add(step)
    for name, value in (("loss", loss), ("ce", ce), ("macs", macs), ("lambda", self.lam)):
      self._trackers[name].update_state(value)
    self._accuracy.update_state(y, logits)
    return {m.name: m.result() for m in self.metrics}

  def test_step(self, data):
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    logits = self(x, training=False)
    labels = tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), self.num_classes)
    ce = tf.reduce_mean(keras.losses.categorical_crossentropy(labels, logits, from_logits=True))
    self._trackers["ce"].update_state(ce)
    self._trackers["loss"].update_state(ce)
    self._trackers["macs"].update_state(self.macs())
    self._trackers["lambda"].update_state(self.lam)
    self._accuracy.update_state(y, logits)
    return {m.name: m.result() for m in self.metrics}

  # ------------------------------------------------------------ derivation --
  def derive(self) -> arch_lib.Arch:
    """The hard decisions as an `Arch` (skipped blocks left out)."""
    blocks = []
    if self.space.first_block:
      blocks.append(arch_lib.parse_block(self.space.first_block))
    blocks += [spec for spec in (b.derive() for b in self.blocks) if spec is not None]
    return arch_lib.Arch(blocks=tuple(blocks), stem_stride=self.space.stem_stride,
                         stem_filters=self.space.stem_filters, head_filters=self.space.head_filters)

  def decisions(self):
    """{block name: {decision: (gate, threshold or logit)}} of the hard architecture."""
    out = {}
    for b in self.blocks:
      g = b.gates(False)
      out[b.name] = {d: {"gate": float(g[d]), "arch_var": float(b.arch_vars[d].numpy())} for d in b.decisions}
    return out
