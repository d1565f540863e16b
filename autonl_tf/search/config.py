"""`SearchConfig`, every setting of a search and its default (a
`search_config.json` written under older field names reads under today's:
`run_files.saved_fields`).

Pure Python, so that `flags/search.py` derives the tool's flags from it
without importing TensorFlow.
"""

import dataclasses
from typing import TYPE_CHECKING, Optional, Union

from autonl_tf.search.space import SearchSpace

if TYPE_CHECKING:
  from autonl_tf.data.config import DataConfig


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """Every setting of a search; the weights' optimizer defaults are the
  paper's ImageNet recipe (see `autonl_tf.recipes`).

  Attributes:
    space: search space name (`autonl-imagenet`, `autonl-cifar`, `cifar`,
      `cifar13`, `tiny`) or a `SearchSpace`.
    data: what to read.
    model_dir: output directory.
    width_multiplier: every channel count of the space times this (rounded
      to multiples of 8, `SearchSpace.scaled`; 0.5: about a quarter of the
      MACs).
    activation: activation of every network of the space (`arch.ACTIVATIONS`:
      `swish`, the paper's; `hard_swish` and `relu6` run faster on CPUs;
      None: the space's own), written on the derived arch.txt's `#!` line.
    nl_norm: LightNL's product in every network of the space
      (`arch.NL_NORMS`: `none`, the paper's, cubic in its input, or
      `second_moment`, divided by the image's mean square; None: the space's
      own, `second_moment` in the 32px spaces `cifar`, `cifar13` and
      `autonl-cifar`, `none` elsewhere), on the derived arch.txt's `#!` line.
    epochs: search epochs, the supernet warm-up included.
    supernet_warmup_epochs: the first epochs, in which the supernet's weights
      train with the cost off, the architecture frozen and gate dropout on;
      the search proper follows.
    steps_per_epoch: steps per epoch (None: one pass over the train split).
    batch_size: global batch size.
    cost: `log`, a fixed price `lam` on the cost (MACs, or ms with
      `cost_model=latency`), or `target`, a price that adapts until the
      derived network is within `tolerance` of `target_macs` (or
      `target_latency_ms`); see `search.cost`.
    target_macs: the MAC budget of `cost=target` (e.g. 3e8).
    cost_model: what the cost prices: `macs`, or `latency`, the ms predicted
      by the LiteRT latency table at `latency_table` on the machine it was
      built on.
    latency_table: a table of `tools/latency_table.py` built for this space,
      width_multiplier, input size and classes (needed by
      `cost_model=latency`).
    target_latency_ms: the latency budget (predicted ms) of `cost=target`
      with `cost_model=latency`.
    lam: lambda, the price of the cost: the weight of its force against the
      cross-entropy's, both normalised (`search.supernet`); None: 0.5 with
      `cost=log`, and a start at 0 with `cost=target`, where the price rises
      from nothing until the budget binds, so that the decisions worth least
      per MAC go first.
    dual_lr: lambda's step with `cost=target` (times the relative excess).
    tolerance: with `cost=target`, the relative band around the target
      inside which lambda holds and within which the landing picks
      architectures.
    penalty: with `cost=target`, the proportional part of the price,
      penalty * (cost / target - 1).
    margin: every decision's distance from flipping (log units) when the
      search proper starts.
    decision_value: what a kernel, expansion, skip or LightNL decision
      compares with its learnable threshold: `logit`, nothing: the threshold
      is a logit moved by its straight-through gradient alone; or
      `weight_norm`, the log RMS of its weights (Single-Path NAS, the
      paper's). The weights are all followed by batch norm, so their common
      scale is not something the loss sees: with `weight_norm` weight decay
      and gradient noise move every margin alike (`search.blocks`).
    landing_candidates: with `cost=target`, how many of the most visited
      architectures within tolerance the landing evaluates on the validation
      split (the held-out tail of train when the dataset has no validation
      split; never test); the most accurate is derived.
    bn_recalibration_batches: training batches over which each landing
      candidate's BN statistics are re-estimated before it is evaluated (0:
      none; `landing_bn_batches` before).
    landing_latency: with `cost_model=latency` and `cost=target`, what the
      landing holds to the target: `table`, the predicted ms, or `measured`,
      each candidate timed end to end on this machine (LiteRT, the table's
      threads and repeats: the machine must be the one the table was built
      on). Then the states visited within `landing_window` of the target
      (predicted) are the pool; `landing_candidates` distinct networks of it
      are timed, each time the one nearest the target after correcting the
      table by the measured / predicted ratio of those timed so far
      (`landing.time_nearest`); the most accurate of those measured within
      `tolerance` is derived, else the one measured nearest.
    landing_window: with `landing_latency=measured`, the relative distance
      from the target (predicted) within which visited states are the
      landing's pool (None: 0.1).
    validation_steps: batches of the landing's evaluation (None: the whole
      split).
    optimizer: the weights' optimizer: `rmsprop` (the TF1-style RMSProp of
      the paper's recipe), `sgd` or `adam`.
    momentum: momentum of the weights' optimizer.
    nesterov: Nesterov momentum (`sgd`).
    lr_per_256: the weights' learning rate per 256 images (linear warm-up over
      `lr_warmup_epochs`, then cosine).
    lr_warmup_epochs: epochs of linear warm-up of the weights' learning rate.
    arch_lr: the architecture variables' learning rate (SGD on the
      normalised force, cosine over the search proper, so that the
      architecture settles as the rate decays).
    weight_decay: L2 on conv / dense kernels.
    label_smoothing: label smoothing of the cross-entropy.
    gate_dropout: gate dropout probability of the supernet warm-up.
    jit_compile: XLA-compile the search step.
    precision: `float32`, `mixed_bfloat16` or `mixed_float16` (see
      `distribute.precision`); architecture variables, gates and MACs stay
      float32.
    sync_bn: batch-norm statistics over all replicas.
    verbose: Keras progress output: 0 silent, 1 bar, 2 line per epoch.
  """
  space: Union[str, SearchSpace]
  data: "DataConfig"
  model_dir: str
  width_multiplier: float = 1.0
  activation: Optional[str] = None
  nl_norm: Optional[str] = None
  epochs: int = 10
  supernet_warmup_epochs: int = 2
  steps_per_epoch: Optional[int] = None
  batch_size: int = 128
  cost: str = "log"
  target_macs: Optional[float] = None
  cost_model: str = "macs"
  latency_table: Optional[str] = None
  target_latency_ms: Optional[float] = None
  lam: Optional[float] = None
  dual_lr: float = 0.01
  tolerance: float = 0.03
  penalty: float = 1.0
  margin: float = 0.1
  decision_value: str = "logit"
  landing_candidates: int = 5
  bn_recalibration_batches: int = 20
  landing_latency: str = "table"
  landing_window: Optional[float] = None
  validation_steps: Optional[int] = None
  optimizer: str = "rmsprop"
  momentum: float = 0.9
  nesterov: bool = False
  lr_per_256: float = 0.032
  lr_warmup_epochs: float = 1.0
  arch_lr: float = 0.005
  weight_decay: float = 1e-5
  label_smoothing: float = 0.1
  gate_dropout: float = 0.1
  jit_compile: bool = False
  precision: str = "float32"
  sync_bn: bool = False
  verbose: int = 2
