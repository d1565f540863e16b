"""Latency-searched vs MAC-searched networks at equal measured latency on
CIFAR-10: which is more accurate per millisecond on this machine?

The MAC-searched network is the search-vs-random study's (`--study`, the
workdir of benchmarks/search_vs_random.py): its search of seed
--search_seed at the study's MAC budget and that network's training. Its
latency, measured end to end here (LiteRT, the table's threads, the fastest
invoke over the table's passes), is the target of a second search with
`--cost_model=latency --latency_table=... --landing_latency=measured`, with
every other setting the study's (space and width, schedule, tolerance,
search seed, recipe); the network it derives is trained exactly as the
study trains every network (its plan.json: epochs, training seed, CIFAR
recipe). Every trained network of the study is timed the same way, so the
two searched networks stand among all of them in accuracy against measured
latency.

Runs go into --workdir (default runs/latency_vs_macs) and resume like the
study's. The target is timed once, before the search it steers (and read
back from that search's decisions.json if its timing is lost). The read-out
times every trained network again in one sitting, the passes interleaved
(pass 1 of every network, then pass 2, ...), so that the networks compared
are timed under the same conditions: on this machine one network's fastest
invoke moved by 5% between two sittings hours apart, as much as the
difference being read. Both are kept in `<workdir>/latency.json` (`targets`,
`readout`), so a rerun reports the same numbers; a read-out of other networks
than the study's trained ones (a run finished since, a name now for another
arch), of other timing settings, or cut short by a kill is taken again,
whole. Converted models are kept in `<workdir>/tflite` under a digest of
their arch and shapes.

  python benchmarks/latency_vs_macs.py --study=runs/search_vs_random \\
      --latency_table=runs/latency_cifar_x05/table.json --data_dir=runs/tfds --format=markdown
"""

import hashlib
import os
import sys

import _common
import search_vs_random as study
from absl import app
from absl import flags

from autonl_tf import run_files

flags.DEFINE_string("study", None, "Workdir of benchmarks/search_vs_random.py whose search "
                    "--search_seed and its trained network are the MAC-searched side.")
flags.DEFINE_string("latency_table", None, "tools/latency_table.py table of the study's space and "
                    "width at 32px, 10 classes, built on this machine.")
flags.DEFINE_integer("search_seed", 1, "The study's search seed compared (and the latency "
                     "search's seed).")
flags.mark_flags_as_required(["study", "latency_table"])
FLAGS = flags.FLAGS


def study_networks(study_dir):
  """{run name: (variant, arch file or anchor name)} of the study's
  finished trainings."""
  from autonl_tf import io
  nets = {}
  for name in sorted(os.listdir(study_dir)):
    if not os.path.exists(os.path.join(study_dir, name, run_files.METRICS)):
      continue
    if name == "anchor":
      nets[name] = ("anchor", io.read_json(os.path.join(study_dir, "anchor.json"))["name"])
    elif name.startswith("searched-"):  # searched-seedN, or searched-<arm>-seedN
      variant = name.rsplit("-seed", 1)[0]
      nets[name] = (variant, os.path.join(study_dir, name.replace("searched-", "search-", 1),
                                          run_files.ARCH))
    elif name.startswith("hand-lightnl"):
      nets[name] = ("hand-lightnl", os.path.join(study_dir, "hand-lightnl.txt"))
    elif name == "hand-nonl" or name.startswith("random-"):
      nets[name] = (name.split("-")[0] if name.startswith("random") else name,
                    os.path.join(study_dir, f"{name}.txt"))
  return nets


def main(argv):
  del argv
  _common.setup()
  import tempfile
  from autonl_tf import arch as arch_lib
  from autonl_tf import flops
  from autonl_tf import io
  from autonl_tf import latency
  from autonl_tf.models import anchors
  from autonl_tf.search import pieces

  def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2

  plan_path = os.path.join(FLAGS.study, "plan.json")
  if not os.path.exists(plan_path):
    return fail(f"{FLAGS.study} holds no search-vs-random study (no plan.json)")
  settings = io.read_json(plan_path)
  if bool(settings["quick"]) != FLAGS.quick:
    return fail(f"{FLAGS.study} is a {'--quick ' if settings['quick'] else 'full '}study: run "
                f"this {'with' if settings['quick'] else 'without'} --quick")
  seed = FLAGS.search_seed
  mac_name = f"searched-seed{seed}"
  mac_arch_path = os.path.join(FLAGS.study, f"search-seed{seed}", run_files.ARCH)
  if not os.path.exists(os.path.join(FLAGS.study, mac_name, run_files.METRICS)):
    return fail(f"the study's {mac_name} is not trained yet ({FLAGS.study}): run this after it")
  width = settings["width_multiplier"]
  size, classes = study.INPUT_SIZE, study.NUM_CLASSES
  try:
    table = latency.LatencyTable.load(FLAGS.latency_table)
    table.check(FLAGS.latency_table, input_size=size, num_classes=classes)
    want = pieces.space_what(study.study_space(width))
    if table.settings.get("what") != want:
      raise ValueError(f"the latency table {FLAGS.latency_table} was built for "
                       f"{table.settings.get('what')}, not the study's {want}")
  except ValueError as e:
    return fail(str(e))
  workdir = FLAGS.workdir or (tempfile.mkdtemp(prefix="latency_vs_macs-") if FLAGS.quick
                              else "runs/latency_vs_macs")
  os.makedirs(workdir, exist_ok=True)
  log = lambda line: print(line, flush=True)
  threads, warmup, repeats, passes = table.timing
  timings_path = os.path.join(workdir, "latency.json")
  timings = io.read_json(timings_path) if os.path.exists(timings_path) else {}
  save = lambda: io.write_json(timings_path, timings)
  targets = timings.setdefault("targets", {})
  steered = os.path.join(workdir, f"latency-search-seed{seed}", run_files.DECISIONS)
  if mac_name not in targets:
    targets[mac_name] = (
        io.read_json(steered)["target_latency_ms"] if os.path.exists(steered)  # its search's
        else latency.time_passes(latency.arch_tflite(arch_lib.load(mac_arch_path), size, classes),
                                 *table.timing)["ms"])
    save()
  target = targets[mac_name]
  log(f"target: {mac_name} measured {target:.3f} ms ({FLAGS.latency_table}, {threads} "
      f"thread(s))")
  lat_search = f"latency-search-seed{seed}"
  runs = [
      study.Run(lat_search, "latency-search", seed, search=True, search_fields=dict(
          cost_model="latency", target_macs=None, latency_table=FLAGS.latency_table,
          target_latency_ms=target, landing_latency="measured")),
      study.Run(f"latency-searched-seed{seed}", "latency-searched", settings["seed"],
                os.path.join(workdir, lat_search, run_files.ARCH), after=lat_search)]
  records = {}
  for run in runs:
    if run.after and "failed" in records.get(run.after, {}):
      records[run.name] = {"failed": f"its search ({run.after}) failed"}
      continue
    records[run.name] = study.execute(run, workdir, settings, log)

  rows, nets = [], study_networks(FLAGS.study)
  for name, (variant, arch) in nets.items():
    rows.append((variant, name, io.read_json(os.path.join(FLAGS.study, name, run_files.METRICS)),
                 arch))
  lat_trained = records[runs[1].name]
  if "failed" not in lat_trained:
    rows.append(("latency-searched", runs[1].name, lat_trained, runs[1].arch))
  # name -> (variant, the loaded Arch, or the anchor's name)
  archs = {name: (variant, arch if variant == "anchor" else arch_lib.load(arch))
           for variant, name, _, arch in rows}

  def digest(name):
    """What the network's timing depends on: its arch (or anchor) and shapes."""
    variant, arch = archs[name]
    what = arch if variant == "anchor" else arch_lib.format_arch(arch)
    return hashlib.sha1(f"{size}x{classes}\n{what}".encode()).hexdigest()[:12]

  # One sitting: a read-out of other networks (a name now for another arch, a network trained
  # since), of other timing settings, or left unfinished by a kill is taken again, whole.
  networks = {name: digest(name) for name in archs}
  readout = timings.get("readout") or {}
  if (readout.get("networks") != networks or readout.get("timing") != list(table.timing)
      or any(len((readout["entries"].get(name) or {}).get("passes_ms", ())) < passes
             for name in networks)):
    readout = timings["readout"] = {"networks": networks, "timing": list(table.timing),
                                    "entries": {}}
  flatbuffers = {}

  def flatbuffer(name):
    """The network's float32 TFLite model, converted once: kept in
    <workdir>/tflite under its name and `digest`."""
    if name not in flatbuffers:
      variant, arch = archs[name]
      build = ((lambda: latency.model_tflite(anchors.build_anchor(arch, (size, size, 3), classes),
                                             (size, size, 3))) if variant == "anchor"
               else (lambda: latency.arch_tflite(arch, size, classes)))
      path = os.path.join(workdir, "tflite", f"{name}-{networks[name]}.tflite")
      if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        io.write_bytes(path, build())
      with open(path, "rb") as f:
        flatbuffers[name] = f.read()
    return flatbuffers[name]

  latency.time_in_passes(
      sorted(networks), readout["entries"],
      lambda name: latency.time_tflite(flatbuffer(name), threads, warmup, repeats), passes, save,
      lambda done, total, name: log(f"read-out timing {done}/{total}: {name}"))
  table_rows = []
  for variant, name, metrics, _ in rows:
    ms = readout["entries"][name]["ms"]
    predicted = None
    if variant != "anchor":
      try:
        predicted = table.predict(archs[name][1], size, classes)
      except ValueError:  # blocks outside the space (autonl-s-cifar's SE 0.5)
        pass
    table_rows.append((variant, name, metrics["top1"], ms, predicted, metrics["macs"],
                       metrics["params"]))

  _common.header("Latency-searched vs MAC-searched at equal measured latency (CIFAR-10)")
  _common.title(f"32px, space `{study.study().space}` x{width:g}, {settings['epochs']} epochs (the "
                f"study's protocol); float32 TFLite, {threads} thread(s), batch 1, the "
                f"fastest of {repeats} invokes in each of {passes} passes, every network in "
                f"one sitting")
  by_name = {r[1]: r for r in table_rows}
  base = by_name[mac_name][3]
  _common.table(["variant", "run", "top-1", "measured ms", "table ms", f"vs {mac_name}", "MACs",
                 "params"],
                [(v, n, f"{t:.2f}", f"{ms:.3f}", "-" if p is None else f"{p:.3f}",
                  f"{100 * (ms / base - 1):+.1f}%", _common.millions(m), f"{pr / 1e6:.2f}M")
                 for v, n, t, ms, p, m, pr in sorted(table_rows, key=lambda r: r[3])])
  passes_ms = lambda name: readout["entries"][name]["passes_ms"]
  _common.note("passes (ms): " + "; ".join(
      f"{name} " + " / ".join(f"{ms:.3f}" for ms in passes_ms(name)) for name in sorted(
          by_name, key=lambda name: by_name[name][3])))
  if runs[1].name in by_name:
    lat, mac = by_name[runs[1].name], by_name[mac_name]
    spread = [r[2] for r in table_rows if r[0] == "hand-lightnl"]
    spread_text = (f"; the study's seed spread (hand-lightnl, {len(spread)} seeds): "
                   f"{max(spread) - min(spread):.2f} points" if len(spread) > 1 else "")
    _common.note(f"latency-searched - MAC-searched: {lat[2] - mac[2]:+.2f} points top-1 at "
                 f"{lat[3]:.3f} vs {mac[3]:.3f} ms measured ({100 * (lat[3] / mac[3] - 1):+.1f}%), "
                 f"{_common.millions(lat[5])} vs {_common.millions(mac[5])} MACs{spread_text}")
    info = records[lat_search]
    _common.note(f"{lat_search}: landing {info['landing']['chosen_by']}; "
                 f"{info.get('search_time_s', 0) / 60:.0f} min; its arch:\n"
                 + "\n".join(f"    {line}" for line in info["arch"]))
  else:
    _common.note(f"{runs[1].name}: {lat_trained.get('failed', 'not run')}")
  count = flops.count(arch_lib.load(mac_arch_path), size, classes)
  _common.note(f"{mac_name} (the target): {_common.millions(count.macs)} MACs, timed "
               f"{target:.3f} ms before the search; runs and latency.json in {workdir}")
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
