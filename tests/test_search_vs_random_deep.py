"""benchmarks/search_vs_random.py --quick --protocol=deep: the second
study's three verdicts recomputed from its runs' own files (its own file so
that the two quick studies run on both xdist workers)."""

import json
import os
import statistics

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf.search import sampling
from autonl_tf.search.space import get_space
from test_search_vs_random import record, run_study


def test_quick_deep_study_reports_the_three_verdicts(tmp_path):
  """--protocol=deep: the `cifar` space (which holds the hand network), the
  library's defaults, hand-lightnl and hand-nonl at both seeds in the means,
  MobileNetV2 at 32px as the anchor; verdicts (a), (b) and (c) recomputed
  from the runs' own files. Seven of the nine trainings come from records
  (made-up results of the networks the study plans), two train."""
  workdir, records = str(tmp_path / "deep"), str(tmp_path / "records")
  hand = arch_lib.scale_width(arch_lib.load("autonl-s-cifar"), 0.25)
  assert hand.nl_norm == "second_moment"  # the preset's own product
  budget = flops.count(hand, 32, 10).macs
  space = get_space("cifar", width_multiplier=0.25)
  random1, random2 = [s.arch for s in sampling.sample_within(space, budget, 2, 0, 32, 10, 0.03)]
  record(records, "hand-lightnl-seed1", hand, 12.0)
  record(records, "hand-lightnl-seed2", hand, 12.5)
  record(records, "random-1", random1, 10.75)
  record(records, "hand-nonl-seed1", arch_lib.without_lightnl(hand), 13.0)
  record(records, "hand-nonl-seed2", arch_lib.without_lightnl(hand), 11.0)
  record(records, "random-2", random2, 14.25)
  out = run_study(workdir, f"--record_dir={records}", "--protocol=deep")
  assert out.count("restored from") == 6
  with open(os.path.join(workdir, "search-seed1", "search_config.json")) as f:
    config = json.load(f)
  assert (config["space"], config["decision_value"], config["nl_norm"]) == (
      "cifar", "logit", "second_moment")
  with open(os.path.join(workdir, "plan.json")) as f:
    assert json.load(f)["study"] == "deep"
  with open(os.path.join(workdir, "anchor.json")) as f:
    anchor = json.load(f)
  assert anchor["name"].startswith("mobilenetv2-cifar:")
  assert anchor["macs"] == flops.count(arch_lib.load(anchor["name"]), 32, 10).macs

  def top1(name):
    with open(os.path.join(workdir, name, "metrics.json")) as f:
      return json.load(f)["top1"]

  with open(os.path.join(workdir, "study.json")) as f:
    summary = json.load(f)["summary"]
  groups = {"searched": ["searched-seed1"], "random": ["random-1", "random-2"],
            "hand-lightnl": ["hand-lightnl-seed1", "hand-lightnl-seed2"],
            "hand-nonl": ["hand-nonl-seed1", "hand-nonl-seed2"],
            "mobilenetv2-cifar": ["mobilenetv2-cifar"]}
  for variant, names in groups.items():
    assert summary[variant]["top1"] == [top1(n) for n in names], variant
  mean = lambda v: statistics.mean(top1(n) for n in groups[v])
  b = summary["verdict-hand"]["searched_minus_hand_lightnl"]
  assert abs(b - (mean("searched") - mean("hand-lightnl"))) < 1e-9
  assert summary["verdict-hand"]["beats"] == (b >= 0)
  c = summary["verdict-lightnl"]
  pooled = statistics.mean([statistics.variance([top1(n) for n in groups[v]])
                            for v in ("hand-lightnl", "hand-nonl")]) ** 0.5
  assert abs(c["pooled_std"] - pooled) < 1e-9
  assert abs(c["hand_lightnl_minus_hand_nonl"] - (mean("hand-lightnl") - mean("hand-nonl"))) < 1e-9
  for line in ("searched - random:", "searched - hand-lightnl:",
               "hand-lightnl - hand-nonl (LightNL's own gain):"):
    assert line in out
  assert "per variant (every seed counted)" in out
  # The first study's workdir is no deep one: refused, nothing run.
  err = run_study(workdir, code=2)
  assert "study: deep there, first now" in err.strip().splitlines()[-1]
