"""Runs a search end to end: a `SearchConfig` (`search.config`: every default
of the search in one place), the supernet built from it, data, warm-up, the NAS objective,
checkpoints / resume, logs, the landing, and the derived `arch.txt`."""

import dataclasses
import json
import os
import time
from typing import Optional, Sequence

import keras
import tensorflow as tf

from autonl_tf import distribute
from autonl_tf import flops
from autonl_tf import io
from autonl_tf import run_files
from autonl_tf.data import datasets
from autonl_tf.search import callbacks as search_cb
from autonl_tf.search import choices
from autonl_tf.search.config import SearchConfig
from autonl_tf.search import landing
from autonl_tf.search.derive import write_derived
from autonl_tf.search.space import SearchSpace, get_space
from autonl_tf.search.supernet import SuperNet
from autonl_tf.training import fit_loop
from autonl_tf.training.losses import apply_weight_decay
from autonl_tf.training import optimizers
from autonl_tf.training import schedules


#: `SearchConfig` fields that override the space's own when not None.
_SPACE_OVERRIDES = ("activation", "nl_norm")
#: What every space had for `_SPACE_OVERRIDES` before `search_config.json`
#: recorded the resolved values (a saved None): the `cifar` spaces' product
#: changed since, so None there no longer means the space's own.
_LEGACY_SPACE_VALUES = {"activation": "swish", "nl_norm": "none"}


def _space(config: SearchConfig) -> SearchSpace:
  if isinstance(config.space, SearchSpace):
    space = config.space.scaled(config.width_multiplier)
  else:
    space = get_space(config.space, width_multiplier=config.width_multiplier)
  overrides = {k: getattr(config, k) for k in _SPACE_OVERRIDES
               if getattr(config, k) not in (None, getattr(space, k))}
  return dataclasses.replace(space, **overrides) if overrides else space


def _latency_table(config: SearchConfig, num_classes: int):
  """The `LatencyTable` at `config.latency_table` (None without one),
  checked against the search's input size and classes."""
  if not config.latency_table:
    if config.cost_model == "latency":
      raise ValueError("cost_model=latency needs latency_table (a table of "
                       "tools/latency_table.py for this space)")
    return None
  from autonl_tf import latency
  from autonl_tf.search import pieces
  table = latency.LatencyTable.load(config.latency_table)
  table.check(config.latency_table, input_size=config.data.input_size, num_classes=num_classes)
  what, want = table.settings.get("what"), pieces.space_what(_space(config))
  if what is not None and what != want:
    raise ValueError(f"the latency table {config.latency_table} was built for {what}, not "
                     f"{want}: build one with the search's --space, --width_multiplier, "
                     f"--activation and --nl_norm")
  return table


#: Settings a resumed search may change: they change neither its path nor its landing.
_RESUMABLE_CHANGES = ("verbose", "data.data_dir")


def _check_resumed_config(saved: dict, config: SearchConfig):
  """Raises a ValueError naming the settings in which `config` differs from
  `saved` (the `search_config.json` of the run being resumed): its backup's
  weights, lambda (in the other run's cost unit) and landing would go on
  under other rules. Settings the saved file predates must be at their
  defaults. A `_SPACE_OVERRIDES` field at None is the space's own value now
  in `config`, and `_LEGACY_SPACE_VALUES` in `saved` (files written before
  the resolved values were recorded), so that a search saved before a
  space's default changed is not resumed under the new one. A file written
  under older field names is read under today's (`run_files.saved_fields`)."""
  saved = run_files.saved_fields(run_files.SEARCH_CONFIG, saved)
  now = json.loads(json.dumps(dataclasses.asdict(config)))
  defaults = json.loads(json.dumps(dataclasses.asdict(SearchConfig(
      space=config.space, data=datasets.DataConfig(config.data.dataset),
      model_dir=config.model_dir))))

  def flat(d, prefix=""):
    for k, v in d.items():
      if isinstance(v, dict):
        yield from flat(v, f"{prefix}{k}.")
      else:
        yield f"{prefix}{k}", v

  saved, now, defaults = dict(flat(saved)), dict(flat(now)), dict(flat(defaults))
  own = _space(dataclasses.replace(config, **dict.fromkeys(_SPACE_OVERRIDES)))
  for k in _SPACE_OVERRIDES:
    if saved.get(k) is None:
      saved[k] = _LEGACY_SPACE_VALUES[k]
    if now.get(k) is None:
      now[k] = getattr(own, k)
  changed = {k: (saved.get(k, defaults.get(k)), v) for k, v in now.items()
             if k not in _RESUMABLE_CHANGES and saved.get(k, defaults.get(k)) != v}
  if changed:
    detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
    raise ValueError(f"{config.model_dir} holds a search with other settings ({detail}): "
                     f"resume it with its own settings, or search into a new model_dir")


def make_supernet(config: SearchConfig, num_classes: int) -> SuperNet:
  """The (uncompiled) supernet of `config`, under its precision policy."""
  table = _latency_table(config, num_classes)
  with distribute.precision(config.precision):
    lam = config.lam if config.lam is not None else 0.5 if config.cost == "log" else 0.0
    net = SuperNet(_space(config), config.data.input_size, num_classes, cost=config.cost,
                   cost_model=config.cost_model, target_macs=config.target_macs,
                   target_latency_ms=config.target_latency_ms, latency_table=table,
                   lam=lam, dual_lr=config.dual_lr,
                   tolerance=config.tolerance, penalty=config.penalty, margin=config.margin,
                   decision_value=config.decision_value,
                   gate_dropout=config.gate_dropout, label_smoothing=config.label_smoothing,
                   dropout_rate=0.0, sync_bn=config.sync_bn)
    net.build((None, config.data.input_size, config.data.input_size, 3))
  return net


def build_supernet(config: SearchConfig, num_classes: int, steps_per_epoch: int) -> SuperNet:
  """`make_supernet` with weight decay and both optimizers compiled in."""
  net = make_supernet(config, num_classes)
  apply_weight_decay(net, config.weight_decay)
  weights_lr = schedules.learning_rate_schedule(
      "cosine", config.lr_per_256, config.batch_size, steps_per_epoch, config.epochs,
      config.lr_warmup_epochs)
  # The architecture optimizer's step counter restarts at 0 when the search
  # proper starts (`SearchPhase`): its cosine spans the search epochs.
  search_steps = max(1, (config.epochs - config.supernet_warmup_epochs) * steps_per_epoch)
  net.compile(optimizer=optimizers.make(config.optimizer, weights_lr,
                                        momentum=config.momentum, nesterov=config.nesterov),
              arch_optimizer=keras.optimizers.SGD(
                  keras.optimizers.schedules.CosineDecay(config.arch_lr, search_steps)),
              jit_compile=config.jit_compile)
  return net


def _check_config(config: SearchConfig):
  """Raises a ValueError for settings a search refuses (an unknown choice, a
  budget missing or of the other cost model, a landing it cannot honour,
  no epochs), before any output."""
  for field in choices.BY_FIELD:
    choices.check(field, getattr(config, field))
  if config.cost == "target" and config.cost_model == "macs" and not config.target_macs:
    raise ValueError("cost=target needs target_macs (the MAC budget)")
  if config.cost == "target" and config.cost_model == "latency" and not config.target_latency_ms:
    raise ValueError("cost=target with cost_model=latency needs target_latency_ms (the budget "
                     "in predicted ms)")
  if config.cost_model == "macs" and (config.target_latency_ms or config.latency_table):
    raise ValueError("target_latency_ms and latency_table are for cost_model=latency (a MAC "
                     "search would ignore them)")
  if config.cost_model == "latency" and config.target_macs:
    raise ValueError("target_macs is for cost_model=macs (a latency search's budget is "
                     "target_latency_ms)")
  for name in ("target_macs", "target_latency_ms"):
    if getattr(config, name) is not None and not getattr(config, name) > 0:
      raise ValueError(f"{name} must be positive, got {getattr(config, name)}")
  landing.check_config(config)
  if config.epochs < 1 or config.supernet_warmup_epochs < 0 or config.batch_size < 1:
    raise ValueError("epochs and batch_size must be positive, supernet_warmup_epochs >= 0")
  _space(config)


def search(config: SearchConfig, strategy: Optional[tf.distribute.Strategy] = None,
           extra_callbacks: Sequence[keras.callbacks.Callback] = (), log=print) -> dict:
  """Runs the search; returns the contents of `decisions.json`."""
  _check_config(config)
  strategy = strategy or tf.distribute.get_strategy()
  start = time.time()
  info = datasets.dataset_info(config.data)
  # A table that does not fit, or cannot be measured against, fails before any output.
  timer = landing.latency_timer(_latency_table(config, info.num_classes), config, strategy,
                                info.num_classes)
  data = dataclasses.replace(config.data, num_classes=info.num_classes)
  steps = fit_loop.steps_per_epoch(info, config.steps_per_epoch, config.batch_size)
  loop = fit_loop.FitLoop(config.model_dir, strategy, log)
  chief = loop.chief
  config_path = os.path.join(config.model_dir, run_files.SEARCH_CONFIG)
  if loop.data_step and os.path.exists(config_path):
    _check_resumed_config(io.read_json(config_path), config)
  os.makedirs(config.model_dir, exist_ok=True)
  if chief:
    # The space's resolved activation and product, not None: a later change of
    # the space's defaults cannot change what a resume of this search means.
    space = _space(config)
    io.write_json(config_path, dataclasses.asdict(dataclasses.replace(
        config, **{k: getattr(space, k) for k in _SPACE_OVERRIDES})))
  train_ds = loop.train_data(data, config.batch_size)
  with strategy.scope():
    net = build_supernet(config, info.num_classes, steps)
  quiet = log or (lambda _: None)
  landing_log = search_cb.LandingLog(
      config.epochs, config.supernet_warmup_epochs,
      landing.window(config) if timer else config.tolerance) if config.cost == "target" else None
  loop.fit(net, train_ds, config.epochs, steps, verbose=config.verbose,
           first=[search_cb.SearchPhase(config.supernet_warmup_epochs, config.gate_dropout)],
           state=[landing_log] if landing_log else [],
           extra_state={"landing": landing_log} if landing_log else None,
           logs=[search_cb.DecisionLog(config.model_dir, chief),
                 search_cb.MarginLog(config.model_dir, chief)],
           summary_keys=["ce", "accuracy", "macs"] + (
               ["latency_ms"] if config.cost_model == "latency" else []) + ["lambda"],
           extra=extra_callbacks)
  visited = landing_log.visited if landing_log else None
  val_ds, calibration_ds = landing.validation_data(visited, strategy, data, config)
  landed = landing.land(net, visited, val_ds, config, quiet, calibration_ds, timer)
  extra = {"search_time_s": round(time.time() - start, 1), "epochs": config.epochs,
           "steps_per_epoch": steps, "dataset": data.dataset, "landing": landed}
  if chief:
    _, info_out = write_derived(net, config.model_dir, extra)
  else:  # the chief writes; the other workers report the same architecture
    count = flops.count(net.derive(), data.input_size, info.num_classes)
    info_out = dict(extra, macs=count.macs, params=count.params)
  predicted = f", {info_out['latency_ms']:.3f} ms predicted" if "latency_ms" in info_out else ""
  if "measured_latency_ms" in landed:
    predicted += f", {landed['measured_latency_ms']:.3f} ms measured"
  net.force_state(None)
  quiet(f"derived: {info_out.get('macs', 0) / 1e6:.2f}M MACs{predicted}, "
        f"{info_out.get('params', 0) / 1e6:.2f}M params ({landed['chosen_by']}) "
        f"-> {os.path.join(config.model_dir, run_files.ARCH)}")
  return info_out
