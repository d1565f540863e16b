"""The files of a run directory, by name: what `tools/train.py`,
`tools/search.py`, the pipeline and the benchmarks write, and what the
tools that read a run (visualize, export, the benchmarks' resume) open.
Pure Python.

A training's `--model_dir`: `CONFIG`, `LOG`, `TENSORBOARD`, `BACKUP` (the
resume state), `CHECKPOINTS` (per-epoch weights), then `FINAL_MODEL` and
`METRICS` when it finished. A search's: `SEARCH_CONFIG`, `SEARCH_LOG`,
`MARGINS`, `TENSORBOARD`, `BACKUP`, then `ARCH` and `DECISIONS` when it
landed. The benchmarks add `EPOCH_TIMES` and, for a run that failed,
`FAILED`. The pipeline's workdir holds a search and a training directory
(`PIPELINE_SEARCH`, `PIPELINE_TRAIN`) and `PIPELINE_STATE`, `EVAL`,
`EXPORT`, `ARCH_PICTURE`, `SEARCH_PICTURE`, `SUMMARY`; an export
directory holds `<version>/`, `LABELS`, `tflite_model(variant)` and
`parity_report(...)`. A config file written under older field names reads
under today's (`saved_fields`).
"""

CONFIG = "config.json"
LOG = "log.csv"
TENSORBOARD = "tensorboard"
BACKUP = "backup"
CHECKPOINTS = "checkpoints"
#: In `CHECKPOINTS`: one weights file per epoch (`checkpoint(epoch)`).
CHECKPOINT_GLOB = "epoch_*.weights.h5"
#: In `BACKUP`: the files Keras' `BackupAndRestore` writes (its names).
BACKUP_WEIGHTS = "latest.weights.h5"
BACKUP_METADATA = "training_metadata.json"
FINAL_MODEL = "final.keras"
METRICS = "metrics.json"

SEARCH_CONFIG = "search_config.json"
SEARCH_LOG = "search_log.csv"
ARCH = "arch.txt"
DECISIONS = "decisions.json"
MARGINS = "margins.csv"

EPOCH_TIMES = "epoch_times.json"
FAILED = "failed.json"

PIPELINE_SEARCH = "search"
PIPELINE_TRAIN = "train"
PIPELINE_STATE = "pipeline.json"
EVAL = "eval.json"
EXPORT = "export"
ARCH_PICTURE = "arch.png"
SEARCH_PICTURE = "search.png"
SUMMARY = "summary.json"

LABELS = "labels.txt"
_TFLITE = ".tflite"


def checkpoint(epoch: int) -> str:
  """The weights file of `epoch` (counted from 1) in `CHECKPOINTS`."""
  return f"epoch_{epoch:03d}.weights.h5"


def tflite_model(variant: str) -> str:
  """The TFLite file of `variant` (float32, float16, dynamic, int8) in an
  export directory."""
  return f"model_{variant}{_TFLITE}"


def parity_report(tflite_path: str) -> str:
  """The parity report written beside the TFLite file `tflite_path`."""
  return tflite_path[:-len(_TFLITE)] + ".parity.json"

#: Fields renamed since a run's config file was written: {file: {old dotted
#: path: new name}} (the new name in the same place).
RENAMED_FIELDS = {
    CONFIG: {"data.image_size": "input_size"},
    SEARCH_CONFIG: {"warmup_epochs": "supernet_warmup_epochs", "lr": "lr_per_256",
                    "landing_bn_batches": "bn_recalibration_batches",
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
