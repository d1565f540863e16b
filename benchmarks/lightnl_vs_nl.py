"""LightNL vs the conventional non-local block (Wang et al. 2018).

1. MACs of both at the output of every block of MobileNetV2 (the
   `mobilenet-v2` preset) at 224, for LightNL (ratio, stride) in
   {(1/4, 1), (1/8, 1), (1/4, 2), (1/8, 2)}, and which position and
   configuration give the paper's "about 400x cheaper";
2. measured CPU time of both layers (batch 1, inside a tf.function) at three
   positions, the time ratio beside the MAC ratio.

  python benchmarks/lightnl_vs_nl.py --quick
  python benchmarks/lightnl_vs_nl.py [--positions=56x56x24,28x28x32,14x14x96] [--format=markdown]
"""

import math
import sys

import _common
from absl import app
from absl import flags

from autonl_tf import arch as arch_lib
from autonl_tf import flops

CONFIGS = ((0.25, 1), (0.125, 1), (0.25, 2), (0.125, 2))
PAPER_RATIO = 400.0

flags.DEFINE_integer("input_size", 224, "MobileNetV2 input size of the MAC table.")
flags.DEFINE_string("positions", "56x56x24,28x28x32,14x14x96",
                    "HxWxC feature maps at which both layers are timed.")
flags.DEFINE_bool("timing", True, "Also time the layers (--notiming: MAC table only, no TF).")
FLAGS = flags.FLAGS


def config_name(r, s):
  return f"r=1/{round(1 / r)} s={s}"


def macs(h, w, c, r, s):
  """(NL MACs, LightNL MACs, LightNL MACs without its depthwise 3x3)."""
  return (flops.nonlocal_macs(h, w, c), flops.lightnl_macs(h, w, c, r, s),
          min(flops.lightnl_orders(h, w, c, r, s)))


def mac_table():
  """Rows of the per-position table and every (ratio, position, config)."""
  count = flops.count(arch_lib.load("mobilenet-v2"), FLAGS.input_size, 1000)
  rows, found = [], []
  for b in count.blocks:
    (h, w), c = b.out_size, b.spec.out_filters
    nl = flops.nonlocal_macs(h, w, c)
    row = [b.index, f"{h}x{w}x{c}", _common.millions(nl)]
    for r, s in CONFIGS:
      _, light, product = macs(h, w, c, r, s)
      row.append(f"{_common.ratio(nl / light)} ({_common.ratio(nl / product)})")
      found.append((nl / light, "counting LightNL's depthwise 3x3", b.index, (h, w, c), r, s))
      found.append((nl / product, "LightNL's affinity products alone", b.index, (h, w, c), r, s))
    rows.append(row)
  return rows, found


def closest_to_paper(found):
  """Per counting convention, the (position, config) whose ratio is closest
  to 400 on a log scale; positions with the same shape are listed together."""
  lines = []
  for convention in dict.fromkeys(f[1] for f in found):
    cands = [f for f in found if f[1] == convention]
    best = min(cands, key=lambda f: abs(math.log(f[0] / PAPER_RATIO)))
    same = [f[2] for f in cands if f[3:] == best[3:]]
    h, w, c = best[3]
    lines.append(f"closest to {PAPER_RATIO:.0f}x ({convention}): {_common.ratio(best[0])} at the "
                 f"{h}x{w}x{c} output of block(s) {', '.join(map(str, same))}, "
                 f"{config_name(best[4], best[5])}")
  return lines


def time_layers(positions, warmup, repeats):
  import tensorflow as tf
  from autonl_tf.layers import LightNL, NonLocal
  rows = []
  for h, w, c in positions:
    x = tf.random.normal([1, h, w, c])
    fns = {"nl": _layer_fn(NonLocal(), x)}
    for r, s in CONFIGS:
      fns[(r, s)] = _layer_fn(LightNL(r, s), x)
    t = _common.measure_many(fns, warmup, repeats)
    for r, s in CONFIGS:
      nl, light, _ = macs(h, w, c, r, s)
      rows.append([f"{h}x{w}x{c}", config_name(r, s), _common.millions(nl), _common.millions(light),
                   _common.ratio(nl / light), _common.ms(t["nl"].median),
                   _common.ms(t[(r, s)].median), _common.ratio(t["nl"].median / t[(r, s)].median)])
  return rows


def _layer_fn(layer, x):
  import tensorflow as tf
  layer(x)  # builds
  fn = tf.function(lambda t: layer(t, training=False))
  return lambda: fn(x)


def parse_positions(text):
  try:
    return [tuple(int(v) for v in p.lower().split("x")) for p in text.split(",") if p]
  except ValueError:
    raise ValueError(f"--positions must look like 56x56x24,28x28x32, got {text!r}") from None


def main(argv):
  del argv
  positions = parse_positions(FLAGS.positions)
  if any(len(p) != 3 for p in positions):
    print("error: every --positions entry needs H, W and C", file=sys.stderr)
    return 2
  if FLAGS.timing:
    _common.setup()
    _common.header("LightNL vs conventional non-local block")
  else:
    print("LightNL vs conventional non-local block (MACs only)")
  rows, found = mac_table()
  _common.title(f"MACs at every MobileNetV2 block output ({FLAGS.input_size}px): NL / LightNL")
  _common.table(["block", "HxWxC", "NL MACs"] + [config_name(r, s) for r, s in CONFIGS], rows)
  _common.note("NL: theta/phi/g 1x1 convs to C/2, both affinity products, output 1x1 conv. "
               "Ratio NL/LightNL with LightNL's depthwise 3x3 counted; in parentheses, "
               "LightNL's affinity products alone. Key positions: ceil(H/s)*ceil(W/s).")
  for line in closest_to_paper(found):
    _common.note(line)
  if not FLAGS.timing:
    return 0
  warmup, repeats = _common.warmup_repeats(quick=(2, 5), full=(5, 30))
  _common.title(f"CPU time, batch 1, median of {repeats} (after {warmup} warm-up)")
  _common.table(["HxWxC", "LightNL", "NL MACs", "LightNL MACs", "MAC ratio", "NL ms",
                 "LightNL ms", "time ratio"], time_layers(positions, warmup, repeats))
  _common.note("NL uses the softmax affinity (its MACs do not count the softmax); both layers "
               "include their BN and residual add.")
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
