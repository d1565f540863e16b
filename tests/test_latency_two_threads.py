"""A latency table built at two threads predicts what issue 41 found
mispredicted: a network ending with a 7x7, expansion-3 block and a LightNL on
4x4 maps.

A two-thread timing needs both cores idle. Under xdist this file is handed
out last (`conftest.LAST_FILES`) and its test waits for the other worker to
finish its last file, so the check runs in the suite rather than skipping;
`-n 0` runs it at once."""

import time

import pytest

from autonl_tf import arch as arch_lib
from autonl_tf import latency

#: How long the test waits for the machine to go idle (the other worker's last
#: file: the files are handed out slowest first) before it skips.
IDLE_WAIT_S = 180

HEAD = ("#! stem_stride=1 head_filters=640 nl_norm=second_moment\n"
        "r1_k3_s11_e1_i32_o32\n"
        "r1_k3_s22_e6_i32_o64\n"
        "r1_k5_s22_e6_i64_o128_se0.25\n"
        "r1_k3_s22_e6_i128_o192_se0.25\n")
#: The outliers' last block: 7x7, expansion 3, 192 to 320 channels, LightNL 1/8 at 4x4.
OUTLIER = arch_lib.parse_arch(HEAD + "r1_k7_s11_e3_i192_o320_se0.25_nonlocal0.125\n")
#: The calibration network: the same but for that block (3x3, no LightNL).
SIBLING = arch_lib.parse_arch(HEAD + "r1_k3_s11_e3_i192_o320_se0.25\n")


def wait_for_idle(threads: int, deadline_s: float) -> float:
  """Others' load (cores) once it leaves `threads` cores idle, or the last
  load measured when `deadline_s` runs out."""
  end = time.monotonic() + deadline_s
  while True:
    others = latency.others_load(1.0)
    if not latency.contended(others, threads) or time.monotonic() > end:
      return others
    time.sleep(2.0)


@pytest.mark.slow
def test_two_thread_table_predicts_a_7x7_lightnl_block_at_4x4(tmp_path):
  """The table of both networks' pieces, built at 2 threads and calibrated
  on the sibling (never on the network checked), predicts the outlier's
  measured time within 15% (the worst-case target of RESULTS section 8).
  On a machine whose second core stays busy the timings say so and the
  check cannot be made: skipped, naming the load."""
  assert latency.arch_pieces(OUTLIER, 32, 10)[-2].key == "lightnl 4x4x320 r0.125 s1 second_moment"
  others = wait_for_idle(2, IDLE_WAIT_S)
  if latency.contended(others, 2):
    pytest.skip(f"others used {others:.2f} cores for {IDLE_WAIT_S} s: the 2-thread check "
                f"needs an idle machine")
  timing = dict(threads=2, warmup=10, repeats=100, passes=2)
  path = str(tmp_path / "t.json")
  pieces = {p.key: p for a in (OUTLIER, SIBLING) for p in latency.arch_pieces(a, 32, 10)}
  table = latency.build_table(list(pieces.values()), path,
                              latency.table_settings("test", 32, 10, **timing), **timing,
                              calibration_archs=[SIBLING])
  whole = latency.time_arch(OUTLIER, 32, 10, **timing)
  hit = sum(t["contended_passes"] for t in [whole, *table.timings])
  if hit:
    pytest.skip(f"{hit} timings had fewer than 2 idle cores (others used "
                f"{whole['others_cores']:.2f} cores): the 2-thread check needs an idle machine")
  error = table.predict(OUTLIER, 32, 10) / whole["ms"] - 1
  assert abs(error) <= 0.15, (error, whole["ms"], table.scale)
