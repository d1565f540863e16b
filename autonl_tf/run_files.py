"""The files of a run directory, by name: what `tools/train.py`,
`tools/search.py`, the pipeline and the benchmarks write, and what the
tools that read a run (visualize, export, the benchmarks' resume) open.
Pure Python.

A training's `--model_dir`: `CONFIG`, `LOG`, `TENSORBOARD`, `BACKUP` (the
resume state), `CHECKPOINTS` (per-epoch weights), then `FINAL_MODEL` and
`METRICS` when it finished. A search's: `SEARCH_CONFIG`, `SEARCH_LOG`,
`MARGINS`, `TENSORBOARD`, `BACKUP`, then `ARCH` and `DECISIONS` when it
landed. The benchmarks add `EPOCH_TIMES` and, for a run that failed,
`FAILED`. A config file written under older field names reads under
today's (`saved_fields`).
"""

CONFIG = "config.json"
LOG = "log.csv"
TENSORBOARD = "tensorboard"
BACKUP = "backup"
CHECKPOINTS = "checkpoints"
FINAL_MODEL = "final.keras"
METRICS = "metrics.json"

SEARCH_CONFIG = "search_config.json"
SEARCH_LOG = "search_log.csv"
ARCH = "arch.txt"
DECISIONS = "decisions.json"
MARGINS = "margins.csv"

EPOCH_TIMES = "epoch_times.json"
FAILED = "failed.json"

#: Fields renamed since a run's config file was written: {file: {old dotted
#: path: new name}} (the new name in the same place).
RENAMED_FIELDS = {
    CONFIG: {"data.image_size": "input_size"},
    SEARCH_CONFIG: {"warmup_epochs": "supernet_warmup_epochs", "lr": "lr_per_256",
                    "data.image_size": "input_size"},
}


def saved_fields(name: str, saved: dict) -> dict:
  """The config file `name` (`CONFIG`, `SEARCH_CONFIG`) as it was saved
  (`dataclasses.asdict` of its config), under today's field names; a copy."""
  out = dict(saved)
  for old, new in RENAMED_FIELDS.get(name, {}).items():
    *parents, key = old.split(".")
    here = out
    for parent in parents:
      if not isinstance(here.get(parent), dict):
        break
      here[parent] = here = dict(here[parent])
    else:
      if key in here and new not in here:
        here[new] = here.pop(key)
  return out
