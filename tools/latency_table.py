"""Builds a LiteRT latency table of a search space on this machine, or times
a whole network end to end the same way (`autonl_tf.latency`; a space's
pieces: `autonl_tf.search.pieces`).

  python tools/latency_table.py --space=cifar --input_size=32 --num_classes=10 --out=lut.json
  python tools/latency_table.py --arch=runs/search/arch.txt --input_size=32 --num_classes=10 \
      --table=lut.json          # measured vs predicted

Every entry is a tiny float32 TFLite model of one piece (stem, block option,
LightNL option, head) at its input shape, invoked `--warmup` times untimed and
`--repeats` times timed on `--threads` threads, in `--passes` passes through
the whole table; the fastest invoke is the entry (why the fastest and not the
median: `autonl_tf/latency/timing.py`). The file is rewritten after every timing:
rerun the same command after a kill and it times only what is missing.
"""

import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from autonl_tf import constants
from autonl_tf.arch import ACTIVATIONS, NL_NORMS
from autonl_tf.latency import SETTLE_RULE

FLAGS = flags.FLAGS
flags.DEFINE_string("space", None, "Search space of the table (autonl-imagenet, autonl-cifar, "
                    "cifar, tiny).")
flags.DEFINE_float("width_multiplier", 1.0, "Channels of the space times this.")
flags.DEFINE_enum("activation", "swish", list(ACTIVATIONS),
                  "Activation of the space's networks (as tools/search.py --activation).")
flags.DEFINE_enum("nl_norm", None, list(NL_NORMS),
                  "LightNL's product in the space's networks (as tools/search.py --nl_norm; "
                  "default: the space's own).")
flags.DEFINE_string("arch", None, "Instead of a table: time this network (preset or arch file) "
                    "end to end.")
flags.DEFINE_string("table", None, "With --arch: also print the table's prediction and its error.")
flags.DEFINE_integer("input_size", constants.INPUT_SIZE, "Input image height and width.")
flags.DEFINE_integer("num_classes", constants.NUM_CLASSES, "Classifier width.")
flags.DEFINE_integer("threads", 1, "LiteRT interpreter threads.")
flags.DEFINE_integer("warmup", 20, "Untimed invokes before timing.")
flags.DEFINE_integer("repeats", 100, "Timed invokes per pass; the fastest is the entry.")
flags.DEFINE_integer("passes", 3, "Passes through the whole table (or timings of --arch); an "
                     f"entry is its fastest over all of them, {SETTLE_RULE}.")
flags.DEFINE_string("out", None, "The table file (JSON) to write or complete.")
flags.DEFINE_integer("calibration_networks", 10, "Random networks of the space timed end to end "
                     "in the same passes as the pieces, spread among them; every prediction is "
                     "scaled by the median of their measured / summed latency (0: no "
                     "calibration).")


def settings(what):
  from autonl_tf import latency
  return latency.table_settings(what, FLAGS.input_size, FLAGS.num_classes, FLAGS.threads,
                                FLAGS.warmup, FLAGS.repeats, FLAGS.passes)


def build():
  import keras
  from autonl_tf import latency
  from autonl_tf.search import pieces as pieces_lib
  from autonl_tf.search.space import get_space
  if not FLAGS.out:
    raise ValueError("--out is required with --space (the table file to write)")
  override = {} if FLAGS.nl_norm is None else {"nl_norm": FLAGS.nl_norm}  # None: the space's
  space = get_space(FLAGS.space, width_multiplier=FLAGS.width_multiplier,
                    activation=FLAGS.activation, **override)
  pieces = pieces_lib.space_pieces(space, FLAGS.input_size, FLAGS.num_classes)
  what = pieces_lib.space_what(space)
  bar = {}

  def progress(done, total, key):
    if "bar" not in bar:
      bar["bar"] = keras.utils.Progbar(total, unit_name="timing")
    bar["bar"].target = total  # grows when unsettled entries are timed again
    bar["bar"].update(done)

  table = latency.build_table(
      pieces, FLAGS.out, settings(what), FLAGS.threads, FLAGS.warmup, FLAGS.repeats, progress,
      passes=FLAGS.passes,
      calibration_archs=pieces_lib.calibration_archs(space, FLAGS.calibration_networks))
  spread = sorted((e["p90_ms"] - e["p10_ms"]) / e["median_ms"] for e in table.entries.values())
  calibrated = (f", calibrated on {len(table.calibration['networks'])} networks: scale "
                f"{table.scale:.3f}" if table.calibration else "")
  timings = table.timings
  unsettled = sum(1 for t in timings if t.get("settled") is False)
  print(f"{what} at {FLAGS.input_size}px: {len(table.entries)} entries (overhead "
        f"{table.entries[latency.OVERHEAD]['ms'] * 1e3:.1f} us), median p10-p90 spread "
        f"{100 * spread[len(spread) // 2]:.1f}% of the entry{calibrated}, "
        f"{unsettled} of {len(timings)} timings unsettled -> {FLAGS.out}")


def time_arch():
  from autonl_tf import arch as arch_lib
  from autonl_tf import latency
  arch = arch_lib.load(FLAGS.arch)
  table = latency.LatencyTable.load(FLAGS.table) if FLAGS.table else None
  if table is not None:  # a mismatch or a missing entry fails before the (slow) timing
    table.check(FLAGS.table, threads=FLAGS.threads, input_size=FLAGS.input_size,
                num_classes=FLAGS.num_classes)
    predicted = table.predict(arch, FLAGS.input_size, FLAGS.num_classes)
  measured = latency.time_arch(arch, FLAGS.input_size, FLAGS.num_classes, FLAGS.threads,
                               FLAGS.warmup, FLAGS.repeats, FLAGS.passes)
  line = (f"{FLAGS.arch} at {FLAGS.input_size}px, {FLAGS.threads} thread(s): measured "
          f"{measured['ms']:.3f} ms (fastest invoke; median {measured['median_ms']:.3f}, p10-p90 "
          f"{measured['p10_ms']:.3f}-{measured['p90_ms']:.3f})")
  if not measured.get("settled", True):
    line += (f", unsettled: its {len(measured['passes_ms'])} passes never within "
             f"{100 * latency.SETTLE_TOLERANCE:g}% of each other")
  if table is not None:
    line += (f", predicted {predicted:.3f} ms ({100 * (predicted / measured['ms'] - 1):+.1f}%)")
  print(line)


def main(argv):
  del argv
  _bootstrap.quiet_logs()
  if bool(FLAGS.space) == bool(FLAGS.arch):
    print("error: pass --space (build a table) or --arch (time a network)", file=sys.stderr)
    return 2
  if FLAGS.threads < 1 or FLAGS.repeats < 1 or FLAGS.passes < 1 or FLAGS.warmup < 0 or \
      FLAGS.calibration_networks < 0:
    print("error: --threads, --repeats and --passes must be positive, --warmup and "
          "--calibration_networks >= 0", file=sys.stderr)
    return 2
  return _bootstrap.run(build if FLAGS.space else time_arch)


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
