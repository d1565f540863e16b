"""Prints the exact MACs and parameters of an architecture, per block, and
with a LiteRT latency table (`tools/latency_table.py`) its predicted ms.

  python tools/profile.py --arch=autonl-s
  python tools/profile.py --arch=path/to/arch.txt --input_size=32 --num_classes=10 --format=json
  python tools/profile.py --arch=path/to/arch.txt --input_size=32 --num_classes=10 \
      --latency_table=lut.json
"""

import json
import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from flags import common

common.define_arch_flags()
flags.DEFINE_enum("format", "table", ["table", "json"], "Output format.")
flags.DEFINE_string("latency_table", None, "Also predict ms per block and in total from this "
                    "table of tools/latency_table.py (built at the same --input_size and "
                    "--num_classes).")
FLAGS = flags.FLAGS


def _kernel(spec):
  return ".".join(str(k) for k in spec.kernel_sizes)


def format_table(name, count, ms=None) -> str:
  """The per-block table; `ms`: a `LatencyTable.breakdown` adds a column."""
  col = (lambda v: f" {v:>8.3f}") if ms else (lambda v: "")
  header = (f"{'#':>3} {'input':>9} {'in':>4} {'out':>4} {'k':>5} {'s':>2} {'e':>2} "
            f"{'se':>5} {'LightNL':>9} {'MACs':>12} {'params':>10}" + (f" {'ms':>8}" if ms else ""))
  blank = f"{'':>4} {'':>4} {'':>5} {'':>2} {'':>2} {'':>5} {'':>9}"
  lines = [f"arch: {name}  input: {count.input_size[0]}x{count.input_size[1]}  "
           f"classes: {count.num_classes}", header, "-" * len(header),
           f"{'':>3} {'stem':>9} {blank} {count.stem_macs:>12,} {count.stem_params:>10,}"
           + (col(ms["stem"]) if ms else "")]
  for b in count.blocks:
    s = b.spec
    nl = f"r{s.nl_ratio:g} s{s.nl_stride}" if s.has_nonlocal else "-"
    se = f"{s.se_ratio:g}" if s.has_se else "-"
    lines.append(
        f"{b.index:>3} {b.in_size[0]:>4}x{b.in_size[1]:<4} {s.in_filters:>4} {s.out_filters:>4} "
        f"{_kernel(s):>5} {s.strides[0]:>2} {s.expand_ratio:>2} {se:>5} {nl:>9} "
        f"{b.macs:>12,} {b.params:>10,}" + (col(ms["blocks"][b.index]) if ms else ""))
  lines.append(f"{'':>3} {'head':>9} {blank} {count.head_macs:>12,} {count.head_params:>10,}"
               + (col(ms["head"]) if ms else ""))
  lines.append("-" * len(header))
  lines.append(f"total: {count.macs:,} MACs ({count.macs / 1e6:.1f}M), "
               f"{count.params:,} params ({count.params / 1e6:.2f}M)")
  if ms:
    lines.append(f"predicted latency: {ms['total']:.3f} ms (invoke overhead "
                 f"{ms['overhead']:.3f} ms included)")
  return "\n".join(lines)


def profile_anchor(name) -> int:
  """An anchor (`resnet20`, `keras:mobilenet_v2:<alpha>`): no arch string,
  so its model is built and its layers counted (`anchors.keras_model_macs`)."""
  from autonl_tf.models import anchors
  if FLAGS.input_size < 1 or FLAGS.num_classes < 1:
    raise ValueError("--input_size and --num_classes must be positive")
  if FLAGS.latency_table:
    raise ValueError(f"--latency_table prices arch strings; {name} is a Keras-built anchor")
  model = anchors.build_anchor(name, (FLAGS.input_size, FLAGS.input_size, 3), FLAGS.num_classes)
  macs = anchors.keras_model_macs(model)
  params = anchors.keras_model_params(model)
  if FLAGS.format == "json":
    print(json.dumps({"arch": name, "macs": macs, "params": params,
                      "input_size": FLAGS.input_size, "num_classes": FLAGS.num_classes}, indent=1))
  else:
    print(f"arch: {name} (a Keras-built anchor)  input: {FLAGS.input_size}x{FLAGS.input_size}  "
          f"classes: {FLAGS.num_classes}\ntotal: {macs:,} MACs ({macs / 1e6:.1f}M), "
          f"{params:,} params ({params / 1e6:.2f}M)")
  return 0


def main(argv):
  del argv
  if arch_lib.name_kind(FLAGS.arch) is None:  # an anchor's name? (imports TensorFlow)
    from autonl_tf.models import anchors
    if anchors.is_anchor(FLAGS.arch):
      try:
        return profile_anchor(FLAGS.arch)
      except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
  try:
    limits = common.arch_limits_from_flags()
    arch = arch_lib.load(FLAGS.arch, limits)
    if FLAGS.input_size < 1 or FLAGS.num_classes < 1:
      raise ValueError("--input_size and --num_classes must be positive")
    count = flops.check_limits(arch, FLAGS.input_size, FLAGS.num_classes, limits)
    ms = None
    if FLAGS.latency_table:
      from autonl_tf import latency
      table = latency.LatencyTable.load(FLAGS.latency_table)
      table.check(FLAGS.latency_table, input_size=FLAGS.input_size,
                  num_classes=FLAGS.num_classes)
      ms = table.breakdown(arch, FLAGS.input_size, FLAGS.num_classes)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if FLAGS.format == "json":
    out = count.as_dict()
    out["arch"] = FLAGS.arch
    out["arch_text"] = arch_lib.format_arch(arch)
    if ms:
      out["latency_ms"] = ms["total"]
      out["latency_overhead_ms"] = ms["overhead"]
      out["stem"]["latency_ms"], out["head"]["latency_ms"] = ms["stem"], ms["head"]
      for block, value in zip(out["blocks"], ms["blocks"]):
        block["latency_ms"] = value
    print(json.dumps(out, indent=1))
  else:
    print(format_table(FLAGS.arch, count, ms))
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
