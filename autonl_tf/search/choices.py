"""The values the search's string settings take, in one place.

Pure Python, so that `flags/search.py` offers exactly what the library
accepts without importing TensorFlow.
"""

#: `cost`: a fixed price on the cost (`log`) or one that adapts until the
#: derived network is within tolerance of the budget (`target`); `search.cost`.
COST_MODES = ("log", "target")
#: `cost_model`: what the cost prices, the MACs or a latency table's ms.
COST_MODELS = ("macs", "latency")
#: `decision_value`: what a threshold decision compares with its threshold,
#: the log RMS of its weights (Single-Path NAS, the paper) or nothing (0: the
#: threshold is a logit); `search.blocks`.
DECISION_VALUES = ("weight_norm", "logit")
#: `landing_latency`: what a latency search's landing holds to the target,
#: the table's prediction or candidates timed end to end; `search.runner`.
LANDING_LATENCIES = ("table", "measured")

#: The `SearchConfig` fields above and the values each takes.
BY_FIELD = {"cost": COST_MODES, "cost_model": COST_MODELS, "decision_value": DECISION_VALUES,
            "landing_latency": LANDING_LATENCIES}


def check(field: str, value):
  """`value` if `field` (a key of `BY_FIELD`) takes it, else a ValueError
  naming the values it takes."""
  values = BY_FIELD[field]
  if value not in values:
    raise ValueError(f"{field} must be one of {', '.join(values)}, got {value!r}")
  return value
