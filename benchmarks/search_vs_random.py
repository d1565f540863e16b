"""Does the search pay? Searched vs random vs hand-placed networks at one MAC
budget on CIFAR-10 (Li & Talwalkar 2019; Yu et al. 2020: many searches do no
better than random architectures of the same cost).

Every network is trained by the same CIFAR recipe (`autonl_tf.recipes`,
`cifar`), schedule and training seed, at 32px, in the study's search space
scaled by `--width_multiplier` (every variant alike). Two studies
(`--protocol`, `STUDIES`): `first`, in the 13-block `cifar13` space with the
paper's LightNL product and decision values; `deep`, in the `cifar` space,
which holds the hand network, with the library's defaults, hand-lightnl and
hand-nonl both at every seed, and MobileNetV2 adapted to 32px as the anchor.

  hand-lightnl  AutoNL-S's CIFAR preset (`autonl-s-cifar`) scaled by the
                width multiplier: its MACs are the budget;
  hand-nonl     the same without its LightNL blocks;
  searched      `tools/search.py --cost=target` at the budget (the search's
                defaults, the schedule of the --search_* flags), one search
                per search seed, each derived network trained; with
                --decision_values=weight_norm,logit a second arm,
                `searched-logit`, whose searches make every threshold a logit;
  random        architectures drawn uniformly from the space
                (`search.sampling`), kept within --tolerance of the budget;
  anchor        `keras.applications.MobileNetV2` (first study), or
                `mobilenetv2-cifar` (deep study; variant of that name), at
                the width whose MACs at 32px are closest to the budget.

The seed spread is measured on hand-lightnl, trained with the training seed
and every --spread_seeds seed. The runs go in a fixed order (spread first,
then search / searched / random interleaved, then the references, then the
searches and trainings of any further searched arm) into their
own directories under --workdir; a finished run (its `metrics.json`, or the
search's `decisions.json`) is skipped and an interrupted one resumes at its
last epoch, so after a kill the same command goes on where it stopped. A run
that fails (e.g. a NaN loss) is recorded in `failed.json` and reported. Each
finished run's small files (`RECORD_FILES`: its numbers, network and times,
no weights) are also kept in --record_dir, a directory in git, from which a
study whose --workdir was lost (a new machine) restores its finished runs.

  python benchmarks/search_vs_random.py --quick                     # synthetic, minutes
  nohup python benchmarks/search_vs_random.py --data_dir=runs/tfds \\
      --workdir=runs/search_vs_random --format=markdown > runs/search_vs_random.log 2>&1 &
  python benchmarks/search_vs_random.py --workdir=runs/search_vs_random --report  # standing
"""

import dataclasses
import math
import os
import statistics
import sys
from typing import List, Optional

import _common
import _runs
from _runs import finished_record, pooled_std, run_seconds
from absl import app
from absl import flags

from autonl_tf import run_files

HAND_PRESET = "autonl-s-cifar"


@dataclasses.dataclass(frozen=True)
class Study:
  """What tells the two studies apart (`--protocol`).

  Attributes:
    space: the search space.
    nl_norm: LightNL's product of every network and search (None: the
      space's own).
    searched_value: the search's `decision_value` of the arm `searched`
      (another value's arm is `searched-<value>`).
    anchor: the reference network every reader knows: `keras`, the
      unadapted keras.applications MobileNetV2 (variant `anchor`), or
      `mobilenetv2-cifar`, MobileNetV2's blocks in the 32px macro (variant
      `mobilenetv2-cifar`), each at the width closest to the budget.
    hand_seeds: hand-lightnl's spread seeds count in its mean, and hand-nonl
      is trained at them too (verdicts b and c); otherwise hand-lightnl's
      spread runs only measure the spread and hand-nonl runs once.
    name: the default --workdir (`runs/<name>`), --record_dir
      (`docs/records/<name>`) and plot (`docs/img/<name>.png`).
  """
  space: str
  nl_norm: Optional[str]
  searched_value: str
  anchor: str
  hand_seeds: bool
  name: str


STUDIES = {
    # The first study: the 13-block space, the paper's LightNL product and
    # decision values, as its protocol fixed them.
    "first": Study("cifar13", "none", "weight_norm", "keras", False, "search_vs_random"),
    # The second study: the space that holds the hand network, the library's
    # defaults (second-moment product, logit decisions), MobileNetV2 at 32px.
    "deep": Study("cifar", None, "logit", "mobilenetv2-cifar", True, "search_vs_random_deep"),
}


flags.DEFINE_enum("protocol", "first", list(STUDIES), "Which study: first (the 13-block `cifar13` "
                  "space, the paper's LightNL product and decision values) or deep (the `cifar` "
                  "space, which holds autonl-s-cifar, with the library's defaults).")
flags.DEFINE_string("data_dir", os.environ.get("TFDS_DATA_DIR", "runs/tfds"),
                    "TFDS data directory with a prepared cifar10 (tools/prepare_data.py).")
flags.DEFINE_string("workdir", None, "Where the runs go (default: runs/<study>, or a "
                    "temporary directory with --quick).")
flags.DEFINE_float("width_multiplier", None, "Channels of the space and of every network "
                   "(default: 0.5; 0.25 with --quick).")
flags.DEFINE_integer("epochs", None, "Training epochs of every network (default: 15; 1 with "
                     "--quick).")
flags.DEFINE_integer("steps_per_epoch", None, "Training steps per epoch (default: one pass over "
                     "the 45k training images; 2 with --quick).")
flags.DEFINE_integer("seed", 1, "Training seed of every network.")
flags.DEFINE_list("spread_seeds", ["2"], "Further training seeds of hand-lightnl: the seed spread.")
flags.DEFINE_list("search_seeds", ["1", "2", "3"], "One search per seed (default: 1,2,3; 1 with "
                  "--quick).")
flags.DEFINE_list("decision_values", None, "The searched arms, one per value of the "
                  "search's --decision_value, each with every --search_seeds seed (default: the "
                  "study's own, whose arm is `searched`: weight_norm, the paper's, in the first "
                  "study, logit in the deep one; another value's arm is `searched-<value>`). "
                  "The first "
                  "arm's runs interleave with the random ones, the others' come after the "
                  "anchor; every other run is shared, so an arm added to a finished study "
                  "runs alone.")
flags.DEFINE_integer("random", None, "Random architectures (default: 5; 2 with --quick).")
flags.DEFINE_integer("random_seed", 0, "Seed of the random architectures.")
flags.DEFINE_float("tolerance", 0.03, "Random architectures are kept within this fraction of "
                   "the budget (also the search's landing band).")
flags.DEFINE_integer("search_epochs", None, "Search epochs, warm-up included (default: 10; 2 "
                     "with --quick).")
flags.DEFINE_integer("search_warmup_epochs", None, "Search warm-up epochs (default: 2; 1 with "
                     "--quick).")
flags.DEFINE_integer("search_steps", None, "Search steps per epoch (default: 100; 2 with --quick).")
flags.DEFINE_integer("search_batch_size", None, "Search batch size (default: 128; 8 with --quick).")
flags.DEFINE_string("record_dir", None, "Where each finished run's small files (metrics, network, "
                    "times) are kept and restored from, so that a study survives the loss of "
                    "--workdir; a directory in git (default: docs/records/<study>; none "
                    "with --quick; '' for none).")
flags.DEFINE_bool("report", False, "Train and search nothing: the table, verdict, study.json and "
                  "plot of the runs finished so far (in --workdir or --record_dir), the others "
                  "marked 'not run yet'; for a study that is still running, from another shell.")
flags.DEFINE_string("plot", None, "The accuracy-vs-MACs PNG (default: docs/img/<study>.png, "
                    "<study> search_vs_random or search_vs_random_deep; <workdir>/<study>.png "
                    "with --quick).")
FLAGS = flags.FLAGS

INPUT_SIZE, NUM_CLASSES = 32, 10
ANCHOR_ALPHAS = [round(0.35 + 0.05 * i, 2) for i in range(74)]  # 0.35 .. 4.0


@dataclasses.dataclass
class Run:
  """One training (or search) of the plan."""
  name: str       # directory under --workdir
  variant: str
  seed: int
  arch: Optional[str] = None   # arch file or anchor name (trainings)
  search: bool = False
  after: Optional[str] = None  # the run whose output it trains (a searched network's search)
  search_fields: Optional[dict] = None  # a search's SearchConfig fields other than the study's


def quick() -> bool:
  return FLAGS.quick


def study() -> Study:
  return STUDIES[FLAGS.protocol]


def nl_norm_override() -> dict:
  """The study's LightNL product as a field override ({} for the space's own)."""
  return {} if study().nl_norm is None else {"nl_norm": study().nl_norm}


def width() -> float:
  return _common.pick(FLAGS.width_multiplier, 0.25, 0.5)


def hand_arch():
  """AutoNL-S-CIFAR at the study's width, with the study's LightNL product."""
  from autonl_tf import arch as arch_lib
  return dataclasses.replace(arch_lib.scale_width(arch_lib.load(HAND_PRESET), width()),
                             **nl_norm_override())


def arm(decision_value) -> str:
  """The variant of the searched arm of `decision_value` (`searched`, or
  `searched-<value>`), also the prefix of its runs' names."""
  return "searched" if decision_value == study().searched_value else f"searched-{decision_value}"


def arms() -> List[str]:
  """--decision_values, checked."""
  from autonl_tf.search.choices import DECISION_VALUES
  values = list(dict.fromkeys(FLAGS.decision_values or [study().searched_value]))
  unknown = [v for v in values if v not in DECISION_VALUES]
  if unknown or not values:
    raise ValueError(f"--decision_values takes {', '.join(DECISION_VALUES)}, got "
                     f"'{','.join(FLAGS.decision_values)}'")
  return values


def variants() -> List[str]:
  """Every variant of the table, the searched arms first."""
  return [arm(v) for v in arms()] + ["random", "hand-lightnl", "hand-nonl", anchor_variant()]


def anchor_variant() -> str:
  return "anchor" if study().anchor == "keras" else study().anchor


def study_space(width_multiplier):
  """The study's space at `width_multiplier`, with the study's LightNL product."""
  from autonl_tf.search.space import get_space
  return get_space(study().space, width_multiplier=width_multiplier, **nl_norm_override())


def data_config(seed):
  return _runs.data_config(seed, quick(), FLAGS.data_dir)


def record_dir() -> Optional[str]:
  """--record_dir, or its default: docs/records/<study name>, none with
  --quick."""
  return _runs.record_dir(FLAGS.record_dir, quick(), study().name)


def execute(run: Run, workdir, settings, log, records=None):
  """Runs `run` with the study's `settings` (`study_settings`) unless
  finished (or failed) before, in `workdir` or in the directory of
  `records` (restored from there); a finished run is kept in `records`.
  Returns its record: `metrics.json` / `decisions.json`, or {"failed": why}."""

  def work(run_dir, prefix, clock):
    if run.search:
      from autonl_tf.search.runner import search
      from autonl_tf import recipes
      fields = dict(cost="target", target_macs=float(settings["budget_macs"]),
                    tolerance=settings["tolerance"], verbose=0, **nl_norm_override())
      fields.update(run.search_fields or {})
      search(recipes.search_config(
          "cifar", space=study().space, width_multiplier=settings["width_multiplier"],
          data=data_config(run.seed), model_dir=run_dir, epochs=settings["search_epochs"],
          supernet_warmup_epochs=settings["search_warmup_epochs"],
          steps_per_epoch=settings["search_steps"], batch_size=settings["search_batch_size"],
          **fields),
          log=prefix, extra_callbacks=[clock])
    else:
      from autonl_tf import recipes
      from autonl_tf.training.trainer import train
      extra = dict(batch_size=8, validation_split=None, eval_steps=2,
                   bn_recalibration_batches=1) if quick() else {}
      train(recipes.train_config(
          "cifar", arch=run.arch, data=data_config(run.seed), model_dir=run_dir,
          epochs=settings["epochs"], steps_per_epoch=settings["steps_per_epoch"], verbose=0,
          **extra),
          log=prefix, extra_callbacks=[clock])

  return _runs.execute(run, workdir, work, log, records)


def anchor_name(budget, workdir) -> str:
  """The study's anchor (`keras:mobilenet_v2:<alpha>`, or
  `mobilenetv2-cifar:<width>` in the deep study) at the width whose MACs at
  32px are closest to the budget; cached in `<workdir>/anchor.json`."""
  prefix = "keras:mobilenet_v2" if study().anchor == "keras" else study().anchor
  return _runs.matched_anchor(prefix, budget, os.path.join(workdir, "anchor.json"), INPUT_SIZE,
                              NUM_CLASSES, ANCHOR_ALPHAS)


def plan(workdir, budget, log) -> List[Run]:
  """Writes the arch files and returns the runs in their fixed order."""
  from autonl_tf import arch as arch_lib
  from autonl_tf.search import sampling
  hand = hand_arch()
  files = {"hand-lightnl": hand, "hand-nonl": arch_lib.without_lightnl(hand)}
  space = study_space(width())
  randoms = sampling.sample_within(space, budget, _common.pick(FLAGS.random, 2, 5),
                                   FLAGS.random_seed, INPUT_SIZE, NUM_CLASSES, FLAGS.tolerance)
  for i, sample in enumerate(randoms, start=1):
    files[f"random-{i}"] = sample.arch
  for name, arch in files.items():
    _runs.pin_arch_file(os.path.join(workdir, f"{name}.txt"), arch,
                        f"the one this code plans (the preset '{HAND_PRESET}' or the space "
                        f"'{study().space}' changed since the study began)")
  path = lambda name: os.path.join(workdir, f"{name}.txt")
  seed = FLAGS.seed
  spread = [int(s) for s in FLAGS.spread_seeds]
  runs = [Run(f"hand-lightnl-seed{seed}", "hand-lightnl", seed, path("hand-lightnl"))]
  hand_spread = [Run(f"hand-lightnl-seed{s}", "hand-lightnl" if study().hand_seeds else
                     "hand-lightnl-spread", s, path("hand-lightnl")) for s in spread]
  if not study().hand_seeds:  # the spread first: it was the study's first question
    runs += hand_spread
  search_seeds = [int(s) for s in (["1"] if quick() and FLAGS["search_seeds"].using_default_value
                                   else FLAGS.search_seeds)]
  random_runs = [Run(f"random-{i}", "random", seed, path(f"random-{i}"))
                 for i in range(1, len(randoms) + 1)]

  def searched(value, s):
    """The search of seed `s` in the arm of `value`, and the training of its network."""
    variant = arm(value)
    name = f"search{variant[len('searched'):]}-seed{s}"
    return [Run(name, "search", s, search=True, search_fields={"decision_value": value}),
            Run(f"{variant}-seed{s}", variant, seed, os.path.join(workdir, name, run_files.ARCH),
                after=name)]

  first, *others = arms()
  for i, s in enumerate(search_seeds):
    runs += searched(first, s)
    if i < len(random_runs):
      runs.append(random_runs[i])
  runs += random_runs[len(search_seeds):]
  if study().hand_seeds:
    runs.append(Run(f"hand-nonl-seed{seed}", "hand-nonl", seed, path("hand-nonl")))
  else:
    runs.append(Run("hand-nonl", "hand-nonl", seed, path("hand-nonl")))
  runs.append(Run(anchor_variant(), anchor_variant(), seed, anchor_name(budget, workdir)))
  if study().hand_seeds:
    for run in hand_spread:
      runs += [run, Run(f"hand-nonl-seed{run.seed}", "hand-nonl", run.seed, path("hand-nonl"))]
  for value in others:
    for s in search_seeds:
      runs += searched(value, s)
  kept = ", ".join(f"{s.macs / 1e6:.2f}M (draw {s.draw})" for s in randoms)
  log(f"plan: {len(runs)} runs, budget {budget / 1e6:.2f}M MACs (hand-lightnl at width "
      f"{width():g}); random draws kept: {kept}")
  return runs


def study_settings(budget) -> dict:
  """What every run of the study shares: the flags, or their --quick /
  full defaults."""
  return {
      "study": FLAGS.protocol, "budget_macs": budget, "width_multiplier": width(), "quick": quick(),
      "epochs": _common.pick(FLAGS.epochs, 1, 15),
      "steps_per_epoch": _common.pick(FLAGS.steps_per_epoch, 2, None), "seed": FLAGS.seed,
      "tolerance": FLAGS.tolerance, "random_seed": FLAGS.random_seed,
      "search_epochs": _common.pick(FLAGS.search_epochs, 2, 10),
      "search_warmup_epochs": _common.pick(FLAGS.search_warmup_epochs, 1, 2),
      "search_steps": _common.pick(FLAGS.search_steps, 2, 100),
      "search_batch_size": _common.pick(FLAGS.search_batch_size, 8, 128)}


#: The value a setting had in the plan.json of a study begun before it existed.
SETTINGS_BEFORE = {"study": "first"}


def check_settings(workdir, settings, flag="--workdir"):
  """Writes `settings` to `<workdir>/plan.json` on the first call; later
  calls must have the same, so that a resumed study never mixes runs of two
  protocols (`flag`: the flag that names `workdir`)."""
  from autonl_tf import io
  if _common.pick(FLAGS.random, 2, 5) < 1:
    raise ValueError(f"--random must be at least 1, got {FLAGS.random}")
  path = os.path.join(workdir, "plan.json")
  if os.path.exists(path):
    old = io.read_json(path)
    changed = sorted(k for k in settings if old.get(k, SETTINGS_BEFORE.get(k)) != settings[k])
    if changed:
      raise ValueError(f"{workdir} holds a study with other settings ("
                       + ", ".join(f"{k}: {old.get(k)} there, {settings[k]} now" for k in changed)
                       + f"); pass another {flag}")
  else:
    io.write_json(path, settings)


def composition(arch) -> dict:
  """What a network chose in the space's decisions, over its expanding
  blocks (the fixed first block left out): blocks kept, blocks per kernel
  size, blocks with expansion 6, blocks followed by LightNL."""
  blocks = [b for b in arch.blocks for _ in range(b.repeats) if b.expand_ratio > 1]
  out = {"blocks": len(blocks)}
  for k in (3, 5, 7):
    out[f"k{k}"] = sum(b.kernel_sizes == (k,) for b in blocks)
  out["e6"] = sum(b.expand_ratio == 6 for b in blocks)
  out["lightnl"] = sum(b.nl_ratio > 0 for b in blocks)
  return out


def format_composition(c) -> str:
  return (f"{c['blocks']} blocks, kernels 3/5/7 in {c['k3']}/{c['k5']}/{c['k7']}, e6 in "
          f"{c['e6']}, LightNL in {c['lightnl']}")


def hand_verdicts(summary) -> List[str]:
  """Verdicts (b), searched mean >= hand-lightnl mean, and (c), LightNL's
  own gain (hand-lightnl - hand-nonl) against their pooled std; each
  recorded in `summary`."""
  lines = []
  s, h, n = (summary.get(v) for v in ("searched", "hand-lightnl", "hand-nonl"))
  if s and h:
    diff = s["mean"] - h["mean"]
    summary["verdict-hand"] = {"searched_minus_hand_lightnl": diff, "beats": diff >= 0}
    lines.append(f"searched - hand-lightnl: {diff:+.2f} points; the search's mean is at least "
                 f"the hand-placed network's: {'yes' if diff >= 0 else 'no'}")
  if h and n:
    pooled = pooled_std([h["top1"], n["top1"]])
    diff = h["mean"] - n["mean"]
    beats = diff > pooled if not math.isnan(pooled) else None
    summary["verdict-lightnl"] = {"hand_lightnl_minus_hand_nonl": diff, "pooled_std": pooled,
                                  "beats": beats}
    lines.append(f"hand-lightnl - hand-nonl (LightNL's own gain): {diff:+.2f} points; pooled std "
                 f"{pooled:.2f}; above the pooled std: "
                 f"{'yes' if beats else 'no' if beats is not None else 'undecided'}")
  return lines


def summarize(runs: List[Run], records, budget, workdir):
  """Per-run rows, per-variant rows, the verdict lines and the study record."""
  run_rows, per_variant, points = [], {}, []
  times = {r.name: run_seconds(os.path.join(workdir, r.name)) for r in runs}
  for run in runs:
    rec = records.get(run.name)
    if run.search:
      continue
    time_s = times[run.name]["alone"]
    if rec is None or "failed" in rec:
      why = "not run yet" if rec is None else rec["failed"]
      run_rows.append([run.variant, run.name, why] + ["-"] * 6)
      continue
    off = 100 * (rec["macs"] / budget - 1)
    search_s = times[run.after]["alone"] if run.after else None
    run_rows.append([run.variant, run.name, f"{rec['top1']:.2f}", _common.millions(rec["macs"]),
                     f"{off:+.1f}%", f"{rec['params'] / 1e6:.2f}M",
                     f"{rec.get('max_abs_logit', float('nan')):.3g}", f"{time_s / 60:.0f}",
                     "-" if search_s is None else f"{search_s / 60:.0f}"])
    group = "hand-lightnl" if run.variant == "hand-lightnl-spread" else run.variant
    if run.variant != "hand-lightnl-spread":
      per_variant.setdefault(group, []).append(rec)
      points.append((group, rec["macs"], rec["top1"]))
  variant_rows, summary = [], {}
  for variant in variants():
    recs = per_variant.get(variant, [])
    if not recs:
      continue
    top1 = [r["top1"] for r in recs]
    std = statistics.stdev(top1) if len(top1) > 1 else float("nan")
    summary[variant] = {"n": len(top1), "top1": top1, "mean": statistics.mean(top1), "std": std,
                        "macs": [r["macs"] for r in recs], "params": [r["params"] for r in recs]}
    variant_rows.append([variant, len(top1), f"{statistics.mean(top1):.2f}",
                         "-" if len(top1) < 2 else f"{std:.2f}",
                         _common.millions(statistics.mean(r["macs"] for r in recs)),
                         f"{statistics.mean(r['params'] for r in recs) / 1e6:.2f}M"])
  spread_runs = [records.get(r.name) for r in runs if r.variant.startswith("hand-lightnl")]
  spread = [r["top1"] for r in spread_runs if r and "top1" in r]
  verdict = []
  if len(spread) > 1:
    verdict.append(f"seed spread (hand-lightnl, seeds {FLAGS.seed},{','.join(FLAGS.spread_seeds)}): "
                   f"{' / '.join(f'{t:.2f}' for t in spread)}, max - min "
                   f"{max(spread) - min(spread):.2f} points")
  r = summary.get("random")
  for value in arms():
    variant = arm(value)
    s = summary.get(variant)
    if not (s and r):
      continue
    pooled = pooled_std([s["top1"], r["top1"]])
    diff = s["mean"] - r["mean"]
    beats = diff > pooled if not math.isnan(pooled) else None
    verdict.append(f"{variant} - random: {diff:+.2f} points; pooled std {pooled:.2f}; the search "
                   f"beats the random mean by more than the pooled std: "
                   f"{'yes' if beats else 'no' if beats is not None else 'undecided'}")
    key = "verdict" if variant == "searched" else f"verdict-{variant}"
    summary[key] = {f"{variant}_minus_random".replace("-", "_"): diff, "pooled_std": pooled,
                    "beats": beats}
  if study().hand_seeds:
    verdict += hand_verdicts(summary)
  summary["times_s"] = times
  return run_rows, variant_rows, verdict, points, summary


def main(argv):
  del argv
  _common.setup()
  import tempfile
  from autonl_tf import flops
  from autonl_tf import io
  from autonl_tf import viz

  workdir = FLAGS.workdir or (tempfile.mkdtemp(prefix=f"{study().name}-") if quick()
                              else os.path.join("runs", study().name))
  # --report reads the runs' files only
  if not (quick() or FLAGS.report) and not _runs.cifar10_readable(data_config(FLAGS.seed)):
    return 2
  os.makedirs(workdir, exist_ok=True)
  log = lambda line: print(line, flush=True)
  try:
    budget = flops.count(hand_arch(), INPUT_SIZE, NUM_CLASSES).macs
    settings = study_settings(budget)
    check_settings(workdir, settings)
    kept = record_dir()
    if kept:
      os.makedirs(kept, exist_ok=True)
      check_settings(kept, settings, "--record_dir")
    runs = plan(workdir, budget, log)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  records = {}
  for run in runs:
    if run.after and "failed" in records.get(run.after, {}):
      # Not written: it trains once its search succeeds (delete the search's failed.json).
      records[run.name] = {"failed": f"its search ({run.after}) failed"}
      continue
    try:
      if FLAGS.report:
        record = finished_record(run, workdir, log, kept)
        if record is not None:
          records[run.name] = record
      else:
        records[run.name] = execute(run, workdir, settings, log, kept)
    except ValueError as e:  # a record of another network (a failed training is a result)
      print(f"error: {e}", file=sys.stderr)
      return 2

  run_rows, variant_rows, verdict, points, summary = summarize(runs, records, budget, workdir)
  plot = FLAGS.plot or (os.path.join(workdir, f"{study().name}.png") if quick()
                        else os.path.join("docs", "img", f"{study().name}.png"))
  title = (f"CIFAR-10, 32px, width {width():g}: test top-1 vs MACs "
           f"({settings['epochs']} epochs)")
  viz.plot_accuracy_vs_macs(points, plot, title, budget)
  searched = {r.name: records.get(r.name, {}).get("arch") for r in runs if r.search}
  from autonl_tf import arch as arch_lib
  from autonl_tf.models import anchors
  made = {r.name: composition(arch_lib.load(r.arch)) for r in runs
          if not r.search and not anchors.is_anchor(r.arch) and "top1" in records.get(r.name, {})}
  summary["composition"] = made
  io.write_json(os.path.join(workdir, "study.json"), {
      "budget_macs": budget, "width_multiplier": width(), "summary": summary,
      "runs": {name: rec for name, rec in records.items()}, "plot": plot}, sort_keys=False)

  _common.header("Searched vs random vs hand-placed networks at one MAC budget (CIFAR-10)")
  first = next((rec for rec in records.values() if "top1" in rec), {})
  _common.title(f"{first.get('dataset', '?')} at 32px, space `{study().space}` x{width():g}, budget "
                f"{budget / 1e6:.2f}M MACs, {first.get('epochs', '?')} epochs x "
                f"{first.get('steps_per_epoch', '?')} steps, training seed {FLAGS.seed}; test "
                f"split ({first.get('eval_examples', '?')} images)")
  _common.table(["variant", "run", "top-1", "MACs", "vs budget", "params", "max |logit|",
                 "train min", "search min"], run_rows)
  _common.title("per variant (every seed counted)" if study().hand_seeds else
                "per variant (the seed-spread reruns left out)")
  _common.table(["variant", "n", "top-1 mean", "std", "MACs mean", "params mean"], variant_rows)
  for line in verdict:
    _common.note(line)
  _common.note("train / search min: epochs x the run's fastest epoch (the machine to itself); the "
               "wall-clock sums, pauses and shared time included, are in study.json (times_s)")
  for name, lines in searched.items():
    if lines:
      _common.note(f"{name}:\n" + "\n".join(f"    {line}" for line in lines))
  if made:
    _common.note("what each trained network chose (its expanding blocks):\n" + "\n".join(
        f"    {name}: {format_composition(c)}" for name, c in made.items()))
  _common.note(f"plot: {plot}; runs and study.json in {workdir}"
               + (f"; finished runs' records in {kept}" if kept else ""))
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
