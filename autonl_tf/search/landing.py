"""The landing: which visited architecture a `target`-mode search returns.

* `Landing`: the hard architectures visited within tolerance of the budget,
  per epoch, with their priced quantity (kept in the search's backup);
* `check_config`: the landing settings a search refuses;
* `window`, `latency_timer`, `time_nearest`: the landing on measured
  latency (the candidates timed with LiteRT on this machine);
* `validation_data`: the validation set and BN-calibration batches of the
  candidates;
* `land`: forces the chosen state and returns the landing's record (the
  `landing` entry of `decisions.json`), logging one line per candidate.
"""

import statistics

from autonl_tf import arch as arch_lib
from autonl_tf import distribute
from autonl_tf.data import datasets
from autonl_tf.search.config import SearchConfig
from autonl_tf.training.evaluation import recalibrate_batch_norm


class Landing:
  """The hard architectures a `target`-mode search visits within `tolerance`
  of the budget, with how often in each epoch and their priced quantity
  (`SuperNet.budget_value`: MACs, or predicted ms), and the nearest state
  seen outside it.

  A state is the string of raw decision bits in `SuperNet.decision_names`
  order. `candidates` ranks the states within tolerance by visits (ties: the
  later epoch); `land` evaluates them (the weights are shared, so every
  visited state is evaluated with the same weights) and derives the most
  accurate, or the nearest state when none was within tolerance.
  """

  def __init__(self, names, tolerance):
    self.names = list(names)
    self.tolerance = float(tolerance)
    self.visits = {}   # bits -> {epoch: count}
    self.values = {}   # bits -> MACs or ms
    self.nearest = None  # (distance, bits, value, epoch) of the nearest state outside

  def record(self, epoch, gates, value, target):
    """Counts a visit of the state with raw 0/1 `gates` costing `value`
    (MACs or ms, in the unit of `target`)."""
    bits = "".join(str(int(g)) for g in gates)
    distance = abs(value / target - 1.0)
    if distance <= self.tolerance:
      per_epoch = self.visits.setdefault(bits, {})
      per_epoch[epoch] = per_epoch.get(epoch, 0) + 1
      self.values[bits] = value
    elif self.nearest is None or distance < self.nearest[0]:
      self.nearest = (distance, bits, value, epoch)

  def candidates(self, limit=None):
    """Up to `limit` (None: all) states within tolerance, most visited first
    (ties: the later one)."""
    order = sorted(self.visits, key=lambda b: (-sum(self.visits[b].values()),
                                               -max(self.visits[b])))
    return order[:limit]

  def state(self, bits):
    return {n: int(c) for n, c in zip(self.names, bits)}

  def to_json(self):
    return {"names": self.names, "tolerance": self.tolerance,
            "visits": {b: {str(e): n for e, n in v.items()} for b, v in self.visits.items()},
            "values": self.values, "nearest": list(self.nearest) if self.nearest else None}

  @classmethod
  def from_json(cls, data):
    out = cls(data["names"], data["tolerance"])
    out.visits = {b: {int(e): n for e, n in v.items()} for b, v in data["visits"].items()}
    # Backups written before the latency cost call the values "macs".
    out.values = dict(data["values"] if "values" in data else data["macs"])
    out.nearest = tuple(data["nearest"]) if data.get("nearest") else None
    return out


def window(config: SearchConfig) -> float:
  """The measured landing's window: `config.landing_window`, or 0.1."""
  return 0.1 if config.landing_window is None else config.landing_window


def check_config(config: SearchConfig):
  """Raises a ValueError for landing settings the search cannot honour: a
  measured landing outside `cost=target` with `cost_model=latency` or with a
  window narrower than the tolerance, a window without a measured landing."""
  if config.landing_latency == "measured":
    if config.cost_model != "latency" or config.cost != "target":
      raise ValueError("landing_latency=measured is for cost=target with cost_model=latency")
    if not window(config) >= config.tolerance:
      raise ValueError(f"landing_window ({config.landing_window}) must be at least the "
                       f"tolerance ({config.tolerance})")
  elif config.landing_window is not None:
    raise ValueError("landing_window is for landing_latency=measured (a table landing would "
                     "ignore it)")


def latency_timer(table, config: SearchConfig, strategy, num_classes: int):
  """`landing_latency=measured`: an `Arch` -> ms timing it end to end like
  the table's entries (its threads, warm-up, repeats and passes) on this
  machine; None otherwise. Refuses a table of another CPU, or a strategy
  spanning several machines (each would time on its own)."""
  if config.landing_latency != "measured":
    return None
  from autonl_tf import latency
  built_on = (table.settings.get("machine") or {}).get("cpu")
  if built_on != latency.cpu_model():
    raise ValueError(f"landing_latency=measured times the candidates on this machine "
                     f"({latency.cpu_model()}), but the latency table {config.latency_table} "
                     f"was built on {built_on}: build the table here, or land on the table")
  if not distribute.single_machine(strategy):
    raise ValueError("landing_latency=measured times the candidates on this machine: it needs "
                     "a strategy on one machine (the workers of a cluster would each time "
                     "their own)")
  return lambda arch: latency.time_arch(arch, config.data.input_size, num_classes,
                                        *table.timing)["ms"]


def time_nearest(predicted, timer, target, count):
  """Times (`timer(key)` -> measured ms) up to `count` of the networks
  `predicted` ({key: predicted ms}) for a landing on measured latency, each
  time the one whose prediction, corrected by the median measured/predicted
  ratio of those timed so far (1 before the first), is nearest `target`
  (ties: the earlier key). The correction follows the table's error on the
  networks around the target, which a whole-space calibration cannot.
  Returns {key: measured ms} in timing order."""
  measured = {}
  while len(measured) < min(count, len(predicted)):
    ratio = statistics.median(measured[k] / predicted[k] for k in measured) if measured else 1.0
    key = min((k for k in predicted if k not in measured),
              key=lambda k: abs(predicted[k] * ratio / target - 1))
    measured[key] = float(timer(key))
  return measured


def validation_data(visited, strategy, data, config: SearchConfig):
  """`(val_ds, calibration_ds)` for `land`: the validation split (distributed
  by `strategy`) when `visited` (a `Landing`, or None) holds a candidate, and
  with it `bn_recalibration_batches` worth of training batches to re-estimate each
  candidate's BN statistics; None where not needed."""
  val_ds = None
  if visited is not None and visited.candidates(1):
    val_ds = datasets.distributed_dataset(strategy, data, "validation", config.batch_size, False)
  calibration_ds = None
  if val_ds is not None and config.bn_recalibration_batches:
    calibration_ds = datasets.make_dataset(data, "train", config.batch_size, training=True)
  return val_ds, calibration_ds


def format_cost(net, value) -> str:
  """A value of the supernet's priced quantity, with its unit."""
  return f"{value / 1e6:.2f}M MACs" if net.cost_model == "macs" else f"{value:.3f} ms"


def land(net, visited, val_ds, config: SearchConfig, log=None, calibration_ds=None, timer=None):
  """Forces the supernet to the architecture the search returns and says
  how it was chosen: in `target` mode the most accurate, on `val_ds`, of the
  `landing_candidates` most visited states within tolerance of `visited` (a
  `Landing`; else the nearest state seen); in `log` mode (`visited` None)
  the last state. With `calibration_ds` (training batches), each candidate's
  BN statistics are re-estimated over `bn_recalibration_batches` of them first:
  the moving statistics were gathered under whichever states the search
  visited, mostly the most visited one, and would otherwise favour it. With
  `timer` (an `Arch` -> measured ms: `landing_latency=measured`), the
  candidates are the distinct networks timed by `time_nearest` among the
  states `visited` holds (those within `landing_window`), and only those
  measured within `tolerance` are evaluated. Returns the record for
  `decisions.json`."""
  if visited is None:
    return {"chosen_by": "last step"}
  names = visited.candidates(None if timer else config.landing_candidates)
  if not names:
    if visited.nearest is None:
      return {"chosen_by": "last step"}
    _, bits, value, _ = visited.nearest
    net.force_state(visited.state(bits))
    return {"chosen_by": f"nearest to the target ({value / net.target - 1:+.1%}; none "
                         f"within {visited.tolerance:.0%})"}
  unit = net.cost_unit

  def calibrate():
    if calibration_ds is not None and config.bn_recalibration_batches:
      recalibrate_batch_norm(net, calibration_ds, config.bn_recalibration_batches)

  def evaluate(bits):
    """The validation result of state `bits`, its BN statistics re-estimated first."""
    net.force_state(visited.state(bits))
    calibrate()
    return net.evaluate(val_ds, steps=config.validation_steps, verbose=0, return_dict=True)

  bn_batches = config.bn_recalibration_batches if calibration_ds is not None else 0
  if timer is None:
    rows = []
    for bits in names:
      result = evaluate(bits)
      value = visited.values[bits]
      rows.append({unit: value, "visits": sum(visited.visits[bits].values()),
                   "val_accuracy": float(result["accuracy"]), "val_ce": float(result["ce"]),
                   "arch": arch_lib.format_arch(net.derive()).splitlines(), "bits": bits})
      if net.cost_model != "macs":
        rows[-1]["macs"] = float(net.macs())
      if log:
        log(f"landing candidate {len(rows)}: {format_cost(net, value)}, "
            f"{rows[-1]['visits']} steps, validation accuracy {rows[-1]['val_accuracy']:.4f}")
    best = max(rows, key=lambda r: (r["val_accuracy"], -abs(r[unit] / net.target - 1)))
    net.force_state(visited.state(best["bits"]))
    calibrate()
    return {"chosen_by": "validation accuracy", "bn_recalibration_batches": bn_batches,
            "candidates": rows}
  return _land_measured(net, visited, names, config, log, calibrate, evaluate, timer, bn_batches)


def _land_measured(net, visited, names, config, log, calibrate, evaluate, timer, bn_batches):
  """`land` with `landing_latency=measured` (see there)."""
  unit = net.cost_unit
  pool, archs = {}, {}  # arch text -> candidate row / Arch; states deriving one network merged
  for bits in names:
    net.force_state(visited.state(bits))
    arch = net.derive()
    text = arch_lib.format_arch(arch)
    visits = sum(visited.visits[bits].values())
    if text in pool:
      pool[text]["visits"] += visits
    else:
      archs[text] = arch
      pool[text] = {unit: visited.values[bits], "macs": float(net.macs()), "visits": visits,
                    "arch": text.splitlines(), "bits": bits}
  measured = time_nearest({t: r[unit] for t, r in pool.items()}, lambda t: timer(archs[t]),
                          net.target, config.landing_candidates)

  def distance(r):
    return abs(r["measured_latency_ms"] / net.target - 1)

  rows = []
  for text, ms in measured.items():
    r = dict(pool[text], measured_latency_ms=ms)
    r["within_tolerance"] = distance(r) <= config.tolerance
    if r["within_tolerance"]:
      result = evaluate(r["bits"])
      r.update(val_accuracy=float(result["accuracy"]), val_ce=float(result["ce"]))
    rows.append(r)
    if log:
      log(f"landing candidate {len(rows)}: {format_cost(net, r[unit])} predicted, {ms:.3f} ms "
          f"measured ({ms / net.target - 1:+.1%}), {r['visits']} steps"
          + (f", validation accuracy {r['val_accuracy']:.4f}" if "val_accuracy" in r else ""))
  eligible = [r for r in rows if r["within_tolerance"]]
  if eligible:
    best = max(eligible, key=lambda r: (r["val_accuracy"], -distance(r)))
    chosen_by = "validation accuracy among the candidates measured within tolerance"
  else:
    best = min(rows, key=distance)
    chosen_by = (f"nearest measured latency ({best['measured_latency_ms'] / net.target - 1:+.1%}; "
                 f"none measured within {config.tolerance:.0%})")
  net.force_state(visited.state(best["bits"]))
  calibrate()
  return {"chosen_by": chosen_by, "bn_recalibration_batches": bn_batches,
          "landing_latency": "measured", "landing_window": window(config),
          "measured_latency_ms": best["measured_latency_ms"], "candidates": rows}
