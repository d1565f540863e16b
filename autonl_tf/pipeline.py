"""Data -> search -> train the derived network from scratch -> evaluate ->
export -> pictures, in one resumable run (`tools/run_pipeline.py`).

The stages are a table, `PIPELINE`: each one a name and two top-level
functions of a `Run`, `done` (its outputs exist) and `run`. Every stage
writes into the work directory and is skipped when its outputs exist; a
stage that fails says so (`[export] failed after ...`, status `failed` in
pipeline.json) and leaves the earlier stages' outputs alone; the search and
the training resume at their last completed epoch (BackupAndRestore), so a
killed pipeline picks up at the stage and epoch it stopped at. Layout of
`workdir` (`Layout`):

    search/     arch.txt, decisions.json, search_log.csv, tensorboard/, backup/
    train/      final.keras, metrics.json, log.csv, checkpoints/, tensorboard/
    eval.json   the paper's evaluation of train/final.keras
    export/     1/ (SavedModel), model_<variant>.tflite + .parity.json, labels.txt
    arch.png, search.png
    pipeline.json   per-stage status and wall time; summary.json
"""

import dataclasses
import os
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from autonl_tf import distribute
from autonl_tf import flops
from autonl_tf import io
from autonl_tf import run_files
from autonl_tf.arch import codec
from autonl_tf.arch import presets
from autonl_tf.data import DataConfig, dataset_info
from autonl_tf.search.runner import SearchConfig
from autonl_tf import recipes
from autonl_tf.training.trainer import TrainConfig

@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """A named end-to-end recipe. `search` and `train` are complete configs
  whose data and model_dir / arch are filled in by `run_pipeline`."""
  name: str
  data: DataConfig
  search: SearchConfig
  train: TrainConfig
  tflite: Sequence[str] = ("float32", "int8")
  representative_images: int = 200
  parity_images: int = 100
  eval_batch_size: int = 100
  description: str = ""


def _smoke(data_dir, seed):
  data = DataConfig("synthetic", input_size=16, num_classes=4, seed=seed)
  return PipelineConfig(
      name="smoke", data=data, description="synthetic data, tiny space and schedule (tests)",
      search=SearchConfig(space="tiny", data=data, model_dir="", epochs=2, supernet_warmup_epochs=1,
                          steps_per_epoch=4, batch_size=16, cost="target", target_macs=6e5,
                          verbose=0),
      train=TrainConfig(arch="", data=data, model_dir="", batch_size=16, epochs=2,
                        steps_per_epoch=5, lr_per_256=0.1, lr_warmup_epochs=0.5, ema_momentum=0.9,
                        validation_split=None, eval_steps=2, bn_recalibration_batches=2,
                        verbose=0),
      representative_images=20, parity_images=20, eval_batch_size=16)


def _cifar10_quick(data_dir, seed):
  data = DataConfig("cifar10", data_dir=data_dir, input_size=32, seed=seed)
  return PipelineConfig(
      name="cifar10-quick", data=data,
      description="CIFAR-10 at 32px on a 2-core CPU in about 40 minutes: a short search to "
                  "65M MACs (a budget where every kind of decision is open), 3 training epochs "
                  "of the CIFAR recipe (far from convergence)",
      search=recipes.search_config(
          "cifar", space="cifar", data=data, model_dir="", epochs=4, supernet_warmup_epochs=1,
          steps_per_epoch=50, batch_size=64, cost="target", target_macs=65e6, verbose=0),
      train=recipes.train_config(
          "cifar", arch="", data=data, model_dir="", epochs=3, validation_split=None,
          bn_recalibration_batches=50, verbose=0),
      representative_images=200, parity_images=200)


def _imagenet_paper(data_dir, seed):
  data = DataConfig("imagenet2012", data_dir=data_dir, input_size=224, seed=seed)
  return PipelineConfig(
      name="imagenet-paper", data=data,
      description="the paper's settings on ImageNet (a TPU / multi-GPU job): search to "
                  "AutoNL-S's 267M MACs, 350 epochs of the MnasNet recipe",
      search=recipes.search_config(
          "imagenet", space="autonl-imagenet", data=data, model_dir="", epochs=10,
          supernet_warmup_epochs=2, batch_size=1024, cost="target", target_macs=267e6),
      train=recipes.train_config("imagenet", arch="", data=data, model_dir="", batch_size=4096,
                                 epochs=350),
      representative_images=500, parity_images=1000)


CONFIGS: Dict[str, Callable[..., PipelineConfig]] = {
    "smoke": _smoke, "cifar10-quick": _cifar10_quick, "imagenet-paper": _imagenet_paper}


def get_config(name: str, data_dir: Optional[str] = None, seed: Optional[int] = None,
               recipe: Optional[str] = None, **overrides) -> PipelineConfig:
  """A named config; `recipe` (`imagenet`, `cifar`) replaces its optimizer
  settings with a recipe's (batch sizes and schedule lengths stay the
  config's); `overrides` may set `precision`, `sync_bn`, `jit_compile` on both
  the search and the training."""
  if name not in CONFIGS:
    raise ValueError(f"unknown pipeline config '{name}' (known: {', '.join(CONFIGS)})")
  config = CONFIGS[name](data_dir, seed)
  if recipe is not None:
    train = {k: v for k, v in recipes.recipe(recipe, "train").items() if k != "batch_size"}
    config = dataclasses.replace(
        config, search=dataclasses.replace(config.search, **recipes.recipe(recipe, "search")),
        train=dataclasses.replace(config.train, **train))
  if overrides:
    config = dataclasses.replace(config, search=dataclasses.replace(config.search, **overrides),
                                 train=dataclasses.replace(config.train, **overrides))
  return config


@dataclasses.dataclass(frozen=True)
class Layout:
  """The files of a pipeline run under `root` (see the module docstring)."""
  root: str
  search_dir: str
  arch_file: str
  decisions_file: str
  train_dir: str
  model_file: str
  metrics_file: str
  eval_file: str
  export_dir: str
  saved_model_dir: str
  tflite_files: Tuple[str, ...]
  pictures: Dict[str, str]

  @classmethod
  def of(cls, root: str, tflite_variants: Sequence[str]) -> "Layout":
    at = lambda *parts: os.path.join(root, *parts)
    search, train, export = run_files.PIPELINE_SEARCH, run_files.PIPELINE_TRAIN, run_files.EXPORT
    return cls(root=root, search_dir=at(search), arch_file=at(search, run_files.ARCH),
               decisions_file=at(search, run_files.DECISIONS), train_dir=at(train),
               model_file=at(train, run_files.FINAL_MODEL),
               metrics_file=at(train, run_files.METRICS),
               eval_file=at(run_files.EVAL), export_dir=at(export),
               saved_model_dir=at(export, "1"),
               tflite_files=tuple(at(export, run_files.tflite_model(v)) for v in tflite_variants),
               pictures={"arch": at(run_files.ARCH_PICTURE),
                         "search": at(run_files.SEARCH_PICTURE)})


@dataclasses.dataclass(frozen=True)
class Run:
  """What every stage is given: the recipe, the files, how to run, where to
  say what happens."""
  config: PipelineConfig
  files: Layout
  strategy: tf.distribute.Strategy
  chief: bool
  log: Callable = print
  search_callbacks: Sequence[keras.callbacks.Callback] = ()
  train_callbacks: Sequence[keras.callbacks.Callback] = ()


def _exists(*paths):
  return all(os.path.exists(p) for p in paths)


# ------------------------------------------------------------------ stages --
# Each stage is a pair of top-level functions of a `Run`: `done` (its outputs
# exist: skip it) and `run`.

def data_ready(run: Run) -> bool:
  from autonl_tf.data import is_prepared
  return is_prepared(run.config.data)


def prepare_data(run: Run):
  """Offline preparation of a dataset TFDS cannot download here."""
  from autonl_tf.data import offline
  data = run.config.data
  if data.dataset not in offline.OFFLINE_DATASETS:
    raise ValueError(f"{data.dataset} is not prepared in {data.data_dir}: run "
                     f"tools/prepare_data.py --dataset={data.dataset} first (ImageNet needs its "
                     "manual download)")
  if run.chief:
    offline.prepare(data.dataset, data.data_dir or os.path.expanduser("~/tensorflow_datasets"),
                    log=run.log)


def searched(run: Run) -> bool:
  return _exists(run.files.arch_file, run.files.decisions_file)


def search_architecture(run: Run):
  from autonl_tf.search.runner import search
  config = dataclasses.replace(run.config.search, data=run.config.data,
                               model_dir=run.files.search_dir)
  search(config, run.strategy, extra_callbacks=run.search_callbacks, log=run.log)


def trained(run: Run) -> bool:
  return _exists(run.files.model_file, run.files.metrics_file)


def train_network(run: Run):
  """The derived network, trained from scratch."""
  from autonl_tf.training.trainer import train
  config = dataclasses.replace(run.config.train, arch=run.files.arch_file, data=run.config.data,
                               model_dir=run.files.train_dir)
  train(config, run.strategy, extra_callbacks=run.train_callbacks, log=run.log)


def evaluated(run: Run) -> bool:
  return _exists(run.files.eval_file)


def evaluate_network(run: Run):
  """The paper's evaluation (centre crop, bicubic, mean/std) of final.keras."""
  from autonl_tf.data import make_dataset
  from autonl_tf.export.loading import load_for_inference
  from autonl_tf.training import evaluation
  config, data = run.config, run.config.data
  predict, _, _ = load_for_inference(run.files.model_file)
  split, steps = config.train.eval_split, config.train.eval_steps
  ds = make_dataset(data, split, config.eval_batch_size, training=False)
  total = evaluation.examples_seen(dataset_info(data).split_sizes.get(split), steps,
                                   config.eval_batch_size)
  result = evaluation.evaluate(predict, ds, steps, total, log=run.log, log_every=50)
  io.write_json(run.files.eval_file, dict(result, model=run.files.model_file, split=split,
                                          dataset=data.dataset))


def exported(run: Run) -> bool:
  return _exists(os.path.join(run.files.saved_model_dir, "saved_model.pb"),
                 *run.files.tflite_files)


def export_network(run: Run):
  """The SavedModel for TF Serving, then the TFLite variants still missing."""
  from autonl_tf.export import workflow
  config, files = run.config, run.files
  request = workflow.ExportRequest(
      model=files.model_file, export_dir=files.export_dir, version=1, overwrite=True,
      data=config.data, representative_images=config.representative_images,
      parity_images=config.parity_images, parity_split=config.train.eval_split)
  if not os.path.exists(os.path.join(files.saved_model_dir, "saved_model.pb")):
    workflow.run_export(request, run.log)
  missing = [v for v, f in zip(config.tflite, files.tflite_files) if not os.path.exists(f)]
  if missing:
    workflow.run_export(dataclasses.replace(request, tflite=missing), run.log)


def drawn(run: Run) -> bool:
  return _exists(*run.files.pictures.values())


def draw_pictures(run: Run):
  from autonl_tf import viz
  data = run.config.data
  viz.plot_arch(run.files.arch_file, data.input_size, run.files.pictures["arch"],
                num_classes=dataset_info(data).num_classes)
  viz.plot_search(run.files.search_dir, run.files.pictures["search"])


@dataclasses.dataclass(frozen=True)
class Stage:
  name: str
  done: Callable[[Run], bool]
  run: Callable[[Run], None]
  chief_only: bool = False  # False: every worker of a multi-worker job runs it


PIPELINE = (
    Stage("data", data_ready, prepare_data),
    Stage("search", searched, search_architecture),
    Stage("train", trained, train_network),
    Stage("evaluate", evaluated, evaluate_network, chief_only=True),
    Stage("export", exported, export_network, chief_only=True),
    Stage("pictures", drawn, draw_pictures, chief_only=True),
)
STAGES = tuple(stage.name for stage in PIPELINE)


class _Record:
  """pipeline.json: status and seconds of each stage (summed over resumes)."""

  def __init__(self, workdir, chief):
    self.path = os.path.join(workdir, run_files.PIPELINE_STATE)
    self.chief = chief
    self.state = {}
    if os.path.exists(self.path):
      self.state = io.read_json(self.path)

  def update(self, stage, status, seconds):
    entry = self.state.setdefault(stage, {"seconds": 0.0})
    entry["status"] = status
    entry["seconds"] = round(entry["seconds"] + seconds, 1)
    if self.chief:
      io.write_json(self.path, self.state)


def run_stage(stage: Stage, run: Run, record: _Record):
  """Skips `stage` when done, else runs it; records and says which, and on
  failure says so, keeps the earlier stages' outputs and re-raises."""
  log, name = run.log, stage.name
  if stage.done(run):
    log(f"[{name}] done before: skipped")
    record.update(name, record.state.get(name, {}).get("status", "done"), 0.0)
    return
  log(f"[{name}] running")
  start = time.time()
  try:
    stage.run(run)
  except Exception as e:
    seconds = time.time() - start
    record.update(name, "failed", seconds)
    log(f"[{name}] failed after {seconds:.0f}s: {e}")
    log(f"[{name}] the earlier stages' outputs in {run.files.root} are kept: rerun to retry "
        f"from the {name} stage")
    raise
  seconds = time.time() - start
  record.update(name, "done", seconds)
  log(f"[{name}] finished in {seconds:.0f}s")


def run_pipeline(config: PipelineConfig, workdir: str,
                 strategy: Optional[tf.distribute.Strategy] = None,
                 train_callbacks: Sequence[keras.callbacks.Callback] = (),
                 search_callbacks: Sequence[keras.callbacks.Callback] = (),
                 log: Callable = print) -> dict:
  """Runs (or resumes) every stage of `PIPELINE`; returns the summary (also
  written to `workdir/summary.json`). Workers other than the chief stop
  after the stages they share (an empty summary)."""
  strategy = strategy or tf.distribute.get_strategy()
  chief = distribute.is_chief(strategy)
  os.makedirs(workdir, exist_ok=True)
  run = Run(config, Layout.of(workdir, config.tflite), strategy, chief, log,
            tuple(search_callbacks), tuple(train_callbacks))
  record = _Record(workdir, chief)
  for stage in PIPELINE:
    if stage.chief_only and not chief:
      return {}
    run_stage(stage, run, record)
  summary = summarize(config, run.files, record.state)
  io.write_json(os.path.join(workdir, run_files.SUMMARY), summary)
  log(format_summary(summary))
  return summary


def summarize(config: PipelineConfig, files: Layout, stages: dict) -> dict:
  metrics = io.read_json(files.metrics_file)
  evaluation = io.read_json(files.eval_file)
  decisions = io.read_json(files.decisions_file)
  arch = presets.load(files.arch_file)
  count = flops.count(arch, config.data.input_size, metrics["num_classes"])
  parity = {}
  for path in files.tflite_files:
    report = run_files.parity_report(path)
    if os.path.exists(report):
      r = io.read_json(report)
      parity[os.path.basename(path)] = {"top1_agreement": r["top1_agreement"],
                                        "max_abs_logit_diff": r["max_abs_logit_diff"],
                                        "bytes": r["bytes"]}
  return {
      "config": config.name, "workdir": files.root, "dataset": config.data.dataset,
      "input_size": config.data.input_size,
      "arch": codec.format_arch(arch), "macs": count.macs, "params": count.params,
      "target_macs": config.search.target_macs, "search_macs": decisions.get("macs"),
      "top1": evaluation["top1"], "top5": evaluation["top5"],
      "eval_examples": evaluation["examples"], "train_epochs": metrics["epochs"],
      "saved_model": files.saved_model_dir, "tflite": list(files.tflite_files),
      "tflite_parity": parity, "pictures": dict(files.pictures),
      "stage_seconds": {k: v["seconds"] for k, v in stages.items()},
  }


def format_summary(s: dict) -> str:
  lines = [f"== {s['config']}: {s['dataset']} at {s['input_size']}px ==",
           "derived arch:"]
  lines += [f"  {line}" for line in s["arch"].strip().splitlines()]
  lines += [
      f"MACs {s['macs'] / 1e6:.2f}M (target {s['target_macs'] / 1e6:.1f}M), "
      f"params {s['params'] / 1e6:.2f}M",
      f"test Prec@1 {s['top1']:.2f}  Prec@5 {s['top5']:.2f} ({s['eval_examples']} images, "
      f"{s['train_epochs']} training epochs)",
      f"SavedModel: {s['saved_model']}",
  ]
  for path in s["tflite"]:
    p = s["tflite_parity"].get(os.path.basename(path))
    extra = (f" ({p['bytes'] / 1e6:.2f} MB, top-1 agreement {100 * p['top1_agreement']:.1f}%)"
             if p else "")
    lines.append(f"TFLite: {path}{extra}")
  lines.append(f"pictures: {s['pictures']['arch']}, {s['pictures']['search']}")
  lines.append("stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in s["stage_seconds"].items()))
  return "\n".join(lines)
