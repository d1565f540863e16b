"""A search for this machine's latency: the 224px space searched with
`--cost_model=latency` and `--target_latency_ms` set to MobileNetV2's
measured LiteRT latency here; the derived network timed end to end beside
MobileNetV2 (keras.applications, alpha 1.0) and AutoNL-S. Target: the
derived network within 5% of MobileNetV2's measured latency.

The search runs on synthetic 224px data (a few steps: what it shows is the
landing on the latency target, not accuracy). By default it lands on measured
latency (`--landing_latency=measured`: the candidates timed end to end here);
`--landing_latency=table` lands on the table's prediction alone. Every network is timed like a
table entry: float32 TFLite, LiteRT interpreter, batch 1, the fastest
invoke over --passes passes.

  python benchmarks/latency_search.py --latency_table=runs/latency_error/autonl-imagenet_224px_t1/table.json
"""

import os
import sys

import _common
from absl import app
from absl import flags

from autonl_tf import run_files

flags.DEFINE_string("latency_table", None, "Table of the autonl-imagenet space at 224px, 1000 "
                    "classes (tools/latency_table.py or benchmarks/latency_table_error.py).")
flags.DEFINE_string("workdir", "runs/latency_search", "The search's model_dir.")
flags.DEFINE_integer("passes", 3, "Timing passes per network.")
flags.DEFINE_integer("search_epochs", 5, "Search epochs (the first is warm-up).")
flags.DEFINE_integer("search_steps", 40, "Steps per search epoch.")
flags.DEFINE_float("arch_lr", 0.005, "The search's --arch_lr (tools/search.py's default).")
flags.DEFINE_float("dual_lr", 0.01, "The search's --dual_lr (tools/search.py's default).")
flags.DEFINE_integer("seed", 1, "Search seed.")
flags.DEFINE_enum("landing_latency", "measured", ["table", "measured"],
                  "The search's --landing_latency: land on the table's predicted ms, or on "
                  "candidates timed end to end here.")
flags.DEFINE_integer("landing_candidates", 5, "The search's --landing_candidates.")
flags.DEFINE_float("landing_window", 0.1, "The search's --landing_window (measured landing).")
flags.mark_flag_as_required("latency_table")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  _common.setup(FLAGS.seed)
  import keras
  from autonl_tf import arch as arch_lib
  from autonl_tf import flops
  from autonl_tf import latency
  from autonl_tf.data import DataConfig
  from autonl_tf.models.anchors import build_anchor, keras_model_macs
  from autonl_tf.search.runner import SearchConfig, search
  table = latency.LatencyTable.load(FLAGS.latency_table)
  table.check(FLAGS.latency_table, input_size=224, num_classes=1000)
  threads, warmup, repeats, _ = table.timing  # its own --passes

  def timed(flat):
    return latency.time_passes(flat, threads, warmup, repeats, FLAGS.passes)["ms"]

  _common.header("Latency-budget search at 224px vs MobileNetV2")
  mnv2 = build_anchor("keras:mobilenet_v2:1.0", (224, 224, 3), 1000)
  rows = [("MobileNetV2 (keras, alpha 1.0)", timed(latency.model_tflite(mnv2, (224, 224, 3))),
           None, keras_model_macs(mnv2), mnv2.count_params())]
  target = rows[0][1]
  autonl_s = arch_lib.load("autonl-s")
  count = flops.count(autonl_s, 224, 1000)
  try:
    predicted = table.predict(autonl_s, 224, 1000)
  except ValueError:  # AutoNL-S has blocks outside the space (SE 0.5 from the 80-channel stage)
    predicted = None
  rows.append(("AutoNL-S", timed(latency.arch_tflite(autonl_s, 224, 1000)), predicted,
               count.macs, count.params))
  keras.utils.set_random_seed(FLAGS.seed)
  config = SearchConfig(
      space="autonl-imagenet", data=DataConfig("synthetic", input_size=224, num_classes=1000,
                                               seed=FLAGS.seed),
      model_dir=FLAGS.workdir, epochs=FLAGS.search_epochs, supernet_warmup_epochs=1,
      steps_per_epoch=FLAGS.search_steps, batch_size=8, cost="target", cost_model="latency",
      latency_table=FLAGS.latency_table, target_latency_ms=target, tolerance=0.03,
      arch_lr=FLAGS.arch_lr, dual_lr=FLAGS.dual_lr, landing_candidates=FLAGS.landing_candidates,
      landing_latency=FLAGS.landing_latency,
      landing_window=FLAGS.landing_window if FLAGS.landing_latency == "measured" else None,
      validation_steps=2, bn_recalibration_batches=2, verbose=0)
  info = search(config, log=lambda line: print(line, file=sys.stderr))
  searched = arch_lib.load(os.path.join(FLAGS.workdir, run_files.ARCH))
  rows.append((f"searched (latency target = MobileNetV2's, landing on {FLAGS.landing_latency} "
               f"latency)",
               timed(latency.arch_tflite(searched, 224, 1000)), info["latency_ms"], info["macs"],
               info["params"]))
  _common.title(f"224px, 1000 classes, float32 TFLite, {threads} thread(s), batch 1: the "
                f"fastest of {repeats} invokes in each of {FLAGS.passes} passes")
  _common.table(["network", "measured ms", "table ms", "vs MobileNetV2", "MACs", "params"],
                [(n, f"{m:.3f}", "-" if p is None else f"{p:.3f}", f"{100 * (m / target - 1):+.1f}%",
                  _common.millions(macs), _common.millions(params))
                 for n, m, p, macs, params in rows])
  landed = rows[-1][1] / target - 1
  _common.note(f"The searched network's measured latency is {100 * landed:+.1f}% from "
               f"MobileNetV2's (target within 5%: {_common.verdict(abs(landed) <= 0.05)}). "
               f"Search: {FLAGS.search_epochs} epochs x {FLAGS.search_steps} steps at batch 8 "
               f"on synthetic data (arch_lr {FLAGS.arch_lr:g}, dual_lr {FLAGS.dual_lr:g}), "
               f"{info['search_time_s']:.0f} s (landing included), landing: "
               f"{info['landing']['chosen_by']}; its arch:\n\n"
               + "\n".join(f"    {line}" for line in arch_lib.format_arch(searched).splitlines()))
  candidates = info["landing"].get("candidates", [])
  if FLAGS.landing_latency == "measured" and candidates:
    _common.title("The landing's candidates, in the order they were timed")
    _common.table(["#", "table ms", "measured ms", "vs target", "steps visited", "MACs"],
                  [(i + 1, f"{c['latency_ms']:.3f}", f"{c['measured_latency_ms']:.3f}",
                    f"{100 * (c['measured_latency_ms'] / target - 1):+.1f}%", c["visits"],
                    _common.millions(c["macs"])) for i, c in enumerate(candidates)])
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
