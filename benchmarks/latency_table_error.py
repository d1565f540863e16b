"""Does the latency table tell the truth? For random networks of a search
space, the table's prediction (overhead + the sum of its pieces'
entries, `latency.LatencyTable.predict`) against the whole network timed end
to end the same way (one TFLite float32 model, LiteRT interpreter, batch 1,
the fastest invoke over --passes passes) in the table's own passes, spread
among its pieces (`build_table`'s check networks). Targets: median relative
error at most 5%, worst at most 15%, on each space. The same networks are
timed again after every table is built: the error against those timings
and the drift between them show what the host's change over a sitting adds.

The tables and timings are written under --workdir and reused: a rerun
after a kill times only what is missing (the settings must match).

  python benchmarks/latency_table_error.py --quick
  python benchmarks/latency_table_error.py --workdir=runs/latency_error --format=markdown
"""

import os
import random
import statistics
import sys
import time

import _common
from absl import app
from absl import flags

from autonl_tf import flops
from autonl_tf import io

# (space, input size, classes): the paper's 224px space and the CIFAR space.
CASES = (("autonl-imagenet", 224, 1000), ("cifar", 32, 10))
QUICK_CASES = (("tiny", 16, 5),)

flags.DEFINE_string("workdir", "runs/latency_error", "Tables and timings (reused by a rerun).")
flags.DEFINE_integer("networks", None, "Random networks per space (default 20; 3 with --quick).")
flags.DEFINE_integer("calibration_networks", None, "Networks the tables are calibrated on "
                     "(default 10; 2 with --quick), apart from the test networks.")
flags.DEFINE_integer("passes", None, "Timing passes through every table and through the "
                     "networks (default 3; 2 with --quick).")
flags.DEFINE_integer("seed", 0, "Seed of the random networks (`search.sampling.sample_arch`).")
FLAGS = flags.FLAGS


def _paths(space_name, size, threads):
  where = os.path.join(FLAGS.workdir, f"{space_name}_{size}px_t{threads}")
  os.makedirs(where, exist_ok=True)
  return where


def held_out_archs(space_name, networks):
  """{name: arch} of the `networks` random test networks (seed --seed)."""
  from autonl_tf.search import sampling
  from autonl_tf.search.space import get_space
  rng = random.Random(FLAGS.seed)
  space = get_space(space_name)
  return {f"random-{i + 1}": sampling.sample_arch(space, rng) for i in range(networks)}


def build(space_name, size, classes, threads, warmup, repeats, passes, calibration, tests):
  """The space's table (built or completed), calibrated on `calibration`
  networks of `pieces.calibration_archs` and checked on the `tests`
  networks ({name: arch}), all timed in the same passes as the pieces, and
  its build time this run."""
  from autonl_tf import latency
  from autonl_tf.search import pieces
  from autonl_tf.search.space import get_space
  space = get_space(space_name)
  settings = latency.table_settings(pieces.space_what(space), size, classes, threads, warmup,
                                    repeats, passes)
  start = time.time()
  path = os.path.join(_paths(space_name, size, threads), "table.json")
  table = latency.build_table(pieces.space_pieces(space, size, classes), path, settings,
                              threads, warmup, repeats, passes=passes,
                              calibration_archs=pieces.calibration_archs(space, calibration),
                              check_archs=list(tests.values()))
  return table, time.time() - start


def time_later(space_name, size, classes, table, archs, threads, warmup, repeats, passes):
  """`archs` ({name: arch}) timed again end to end after every table is
  built, in `passes` passes through all of them (each `.tflite` kept in the
  workdir): {name: timing}, the host's drift since their timings in the
  table's passes."""
  from autonl_tf import arch as arch_lib
  from autonl_tf import latency
  where = _paths(space_name, size, threads)
  done_path = os.path.join(where, "networks.json")
  done = io.read_json(done_path) if os.path.exists(done_path) else {}
  if done and done.get("settings") != table.settings:
    raise ValueError(f"{done_path} was timed with other settings; remove {where} to redo it")
  done = {"settings": table.settings, "seed": FLAGS.seed, "networks": done.get("networks", {})}
  flat = {}
  for name, arch in archs.items():
    text = arch_lib.format_arch(arch)
    path = os.path.join(where, f"{name}.tflite")
    if done["networks"].get(name, {}).get("arch") != text or not os.path.exists(path):
      io.write_bytes(path, latency.arch_tflite(arch, size, classes))  # atomic
      done["networks"][name] = {"arch": text}
      io.write_json(done_path, done)
    with open(path, "rb") as f:
      flat[name] = f.read()
  latency.time_in_passes(list(archs), done["networks"],
                         lambda name: latency.time_tflite(flat[name], threads, warmup, repeats),
                         passes, lambda: io.write_json(done_path, done))
  return {name: done["networks"][name] for name in archs}


def rows_of(table, archs, later, size, classes):
  """(name, MACs, measured ms, summed ms, predicted ms, error, measured later
  ms, error against it) of every test network: measured in the table's
  passes (the check networks) and after every table (`later`)."""
  from autonl_tf import arch as arch_lib
  checks = {n["arch"]: n for n in table.checks}
  rows = []
  for name, arch in archs.items():
    measured = checks[arch_lib.format_arch(arch)]["ms"]
    predicted = table.predict(arch, size, classes)
    rows.append((name, flops.count(arch, size, classes).macs, measured,
                 predicted / table.scale, predicted, predicted / measured - 1,
                 later[name]["ms"], predicted / later[name]["ms"] - 1))
  return rows


def _median_worst(errors):
  return (f"{100 * statistics.median(abs(e) for e in errors):.1f}% / "
          f"{100 * max(abs(e) for e in errors):.1f}%")


def main(argv):
  del argv
  from autonl_tf import latency
  from autonl_tf.search import pieces
  if FLAGS.seed == pieces.CALIBRATION_SEED:
    print("error: --seed is the calibration networks' seed; pick another", file=sys.stderr)
    return 2
  _common.setup(FLAGS.seed)
  threads = FLAGS.threads or 1
  warmup, repeats = _common.warmup_repeats(quick=(3, 10), full=(20, 100))
  networks = _common.pick(FLAGS.networks, 3, 20)
  _common.header("Latency table: predicted vs measured whole-network latency")
  passes = _common.pick(FLAGS.passes, 2, 3)
  cases = QUICK_CASES if FLAGS.quick else CASES
  calibration = _common.pick(FLAGS.calibration_networks, 2, 10)
  tests = {case: held_out_archs(case[0], networks) for case in cases}
  # Every table first (the networks' conversions grow the process), then the test networks
  # again: the host's drift over the sitting.
  tables = {case: build(*case, threads, warmup, repeats, passes, calibration, tests[case])
            for case in cases}
  summary = []
  for (space_name, size, classes), (table, built_s) in tables.items():
    case = (space_name, size, classes)
    later = time_later(*case, table, tests[case], threads, warmup, repeats, passes)
    rows = rows_of(table, tests[case], later, size, classes)
    timings = [*table.timings, *later.values()]
    hit = sum(t.get("contended_passes", 0) for t in timings)
    unsettled = sum(1 for t in timings if t.get("settled") is False)
    errors = [abs(r[5]) for r in rows]
    _common.title(f"{space_name} at {size}px, {classes} classes: {len(rows)} random networks, "
                  f"{threads} thread(s); an entry or network: the fastest of {repeats} invokes "
                  f"(after {warmup}) in each of {passes} passes")
    _common.table(["network", "MACs", "measured ms", "sum of pieces ms", "predicted ms",
                   "error", "measured after ms", "error against it"],
                  [(n, _common.millions(m), f"{a:.3f}", f"{u:.3f}", f"{p:.3f}",
                    f"{100 * e:+.1f}%", f"{a2:.3f}", f"{100 * e2:+.1f}%")
                   for n, m, a, u, p, e, a2, e2 in rows])
    summary.append((f"{space_name} {size}px", len(table.entries), f"{built_s:.0f}",
                    f"{table.scale:.3f}", _median_worst([r[3] / r[2] - 1 for r in rows]),
                    f"{100 * statistics.median(errors):.1f}%", f"{100 * max(errors):.1f}%",
                    f"{100 * statistics.mean(r[5] for r in rows):+.1f}%",
                    f"{100 * (statistics.median(r[6] / r[2] for r in rows) - 1):+.1f}%",
                    _median_worst([r[7] for r in rows]),
                    f"{hit} of {sum(len(t['passes_ms']) for t in timings)}",
                    f"{unsettled} of {len(timings)}",
                    _common.verdict(statistics.median(errors) <= 0.05 and max(errors) <= 0.15)))
  _common.title("Summary (targets: median |error| <= 5%, worst <= 15%)")
  _common.table(["space", "table entries", "table build s (this run)", "scale",
                 "sum of pieces: median / worst |error|", "median |error|", "worst |error|",
                 "mean error", "drift after (median)", "against after: median / worst",
                 "contended passes", "unsettled timings", "verdict"], summary)
  _common.note(f"error = predicted / measured - 1; predicted = scale x sum of pieces, the scale "
               f"the median of measured / sum over {calibration} other random networks "
               "(`search.pieces.calibration_archs`, not the test networks' seed). The "
               "calibration and test networks are timed in the table's passes, spread among "
               "its pieces (`latency.build_table`); the verdict is on those timings. "
               "'Measured after': the test networks timed again once every table is built; "
               "drift = their median measured after / measured - 1, the host's change over the "
               "sitting, which no table predicts. A table or "
               "timing already in --workdir is reused: the build time of a rerun counts only what "
               "was missing. Contended passes: those that, after `latency.CONTENTION_RETRIES` "
               "retries, still had fewer idle cores than threads (`latency.contended`); pause "
               "other jobs and remove the workdir to redo them. Unsettled timings: entries and "
               "networks whose two fastest passes still differed by more than "
               f"{100 * latency.SETTLE_TOLERANCE:g}% after {latency.SETTLE_MAX_PASSES} passes "
               "(`latency.settled`).")
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
