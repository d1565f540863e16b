"""The files of a run directory, by name: what `tools/train.py`,
`tools/search.py`, the pipeline and the benchmarks write, and what the
tools that read a run (visualize, export, the benchmarks' resume) open.
Pure Python.

A training's `--model_dir`: `CONFIG`, `LOG`, `TENSORBOARD`, `BACKUP` (the
resume state), `CHECKPOINTS` (per-epoch weights), then `FINAL_MODEL` and
`METRICS` when it finished. A search's: `SEARCH_CONFIG`, `SEARCH_LOG`,
`MARGINS`, `TENSORBOARD`, `BACKUP`, then `ARCH` and `DECISIONS` when it
landed. The benchmarks add `EPOCH_TIMES` and, for a run that failed,
`FAILED`.
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
