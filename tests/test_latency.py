"""Latency tables (`autonl_tf.latency`): the pieces of a network by hand, a
space's table covers its networks, one entry timed on a tiny shape (and the
timed TFLite piece computes what the Keras piece does), a killed build is
completed rather than restarted."""

import random

import numpy as np
import pytest

from autonl_tf import arch as arch_lib
from autonl_tf import latency
from autonl_tf.latency import timing as timing_lib
from autonl_tf.search import pieces as search_pieces
from autonl_tf.search import sampling
from autonl_tf.search.space import get_space
from search_testing import random_latency_table

ARCH = arch_lib.parse_arch("#! stem_stride=1 head_filters=64\n"
                           "r1_k3_s11_e1_i16_o8\n"
                           "r2_k5_s22_e6_i8_o16_se0.25_nonlocal0.25-2\n")


def test_pieces_of_a_network_by_hand():
  keys = [p.key for p in latency.arch_pieces(ARCH, 32, 10)]
  assert keys == [
      "stem 32x32 s1 c16",
      "mbconv 32x32 r1_k3_s11_e1_i16_o8",
      "mbconv 32x32 r1_k5_s22_e6_i8_o16_se0.25",
      "lightnl 16x16x16 r0.25 s2",
      "mbconv 16x16 r1_k5_s11_e6_i16_o16_se0.25",  # the repeat: stride 1, 16 in
      "lightnl 16x16x16 r0.25 s2",
      "head 16x16x16 c64 k10",
  ]


def test_prediction_is_the_overhead_plus_every_piece_without_it():
  entries = {"overhead": 0.01, "stem 32x32 s1 c16": 0.2, "mbconv 32x32 r1_k3_s11_e1_i16_o8": 0.3,
             "mbconv 32x32 r1_k5_s22_e6_i8_o16_se0.25": 0.5, "lightnl 16x16x16 r0.25 s2": 0.07,
             "mbconv 16x16 r1_k5_s11_e6_i16_o16_se0.25": 0.4, "head 16x16x16 c64 k10": 0.11}
  table = latency.LatencyTable({k: {"ms": v} for k, v in entries.items()})
  by_hand = 0.01 + (0.2 + 0.3 + 0.5 + 0.07 + 0.4 + 0.07 + 0.11) - 7 * 0.01
  assert table.predict(ARCH, 32, 10) == pytest.approx(by_hand)
  table.calibration = {"scale": 1.25}
  assert table.predict(ARCH, 32, 10) == pytest.approx(1.25 * by_hand)
  del table.entries["head 16x16x16 c64 k10"]
  with pytest.raises(ValueError, match="no entry 'head 16x16x16 c64 k10'"):
    table.predict(ARCH, 32, 10)


def test_a_piece_is_the_typed_key_of_its_entry_and_an_option_of_a_block_is_typed():
  piece = latency.arch_pieces(ARCH, 32, 10)[3]
  assert str(piece) == piece.key == "lightnl 16x16x16 r0.25 s2"
  assert str(latency.OVERHEAD_PIECE) == latency.OVERHEAD == "overhead"
  table = latency.LatencyTable({"overhead": {"ms": 0.01}, piece.key: {"ms": 0.07}})
  assert table.entry(piece) == table.entry(piece.key) == 0.07
  assert table.ms(piece) == pytest.approx(0.06)
  space = get_space("tiny")
  options = search_pieces.space_block_pieces(space, 16)[0]
  k, e = space.kernel_sizes[-1], space.expand_ratios[-1]
  r, s = space.nl_ratios[0], space.nl_strides[-1]
  body, nl = options[search_pieces.BlockOption(k, e)], options[search_pieces.NLOption(r, s)]
  assert (body.kind, body.spec.kernel_sizes, body.spec.expand_ratio) == ("mbconv", (k,), e)
  assert (nl.kind, nl.ratio, nl.stride) == ("lightnl", r, s)
  assert len(options) == len(space.kernel_sizes) * len(space.expand_ratios) + \
      len(space.nl_ratios) * len(space.nl_strides)


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_a_space_table_covers_every_network_of_the_space(width):
  space = get_space("cifar", width_multiplier=width)
  keys = {p.key for p in search_pieces.space_pieces(space, 32, 10)}
  rng = random.Random(0)
  for _ in range(300):
    arch = sampling.sample_arch(space, rng)
    assert {p.key for p in latency.arch_pieces(arch, 32, 10)} <= keys
  # 17 blocks x (3 kernels x 2 expands + 3 ratios x 2 strides), shared shapes once.
  options = search_pieces.space_block_pieces(space, 32)
  assert len(options) == 17 and all(len(o) == 12 for o in options)


def test_one_entry_on_a_tiny_shape_times_what_keras_computes():
  import keras
  from ai_edge_litert.interpreter import Interpreter
  # Not a residual block: its zero-initialised residual branch would make any body pass.
  piece = latency.Piece("mbconv", (6, 6, 8), arch_lib.parse_block("r1_k3_s11_e3_i8_o16_se0.25"))
  flat = latency.piece_tflite(piece)
  entry = latency.time_tflite(flat, threads=1, warmup=2, repeats=20)
  assert entry["repeats"] == 20
  assert 0 < entry["ms"] <= entry["p10_ms"] <= entry["median_ms"] <= entry["p90_ms"]
  # The flatbuffer is the piece: same output as a Keras model of it with the
  # same weights (fresh BN: inference mode is the identity affine).
  keras.utils.set_random_seed(3)
  model = timing_lib._piece_model(piece)
  flat = latency.model_tflite(model, piece.shape)
  interp = Interpreter(model_content=flat)
  interp.allocate_tensors()
  x = np.random.default_rng(1).standard_normal((1, 6, 6, 8)).astype(np.float32)
  interp.set_tensor(interp.get_input_details()[0]["index"], x)
  interp.invoke()
  y = interp.get_tensor(interp.get_output_details()[0]["index"])
  np.testing.assert_allclose(y, model(x, training=False).numpy(), atol=1e-4)


def test_a_network_converts_as_through_a_saved_model():
  """`model_tflite` freezes the function and converts it directly: the same
  TFLite ops, tensors and outputs as the SavedModel route (what
  `export.tflite.convert` takes, its input normalisation aside), on a
  network with SE, a LightNL of each product and a residual block."""
  import keras
  import tensorflow as tf
  import tempfile
  from ai_edge_litert.interpreter import Interpreter
  from autonl_tf.export import tflite
  from autonl_tf.models.network import build_model
  arch = arch_lib.parse_arch("#! stem_stride=1 head_filters=64 nl_norm=second_moment\n"
                             "r1_k3_s11_e1_i16_o8\n"
                             "r1_k5_s22_e6_i8_o16_se0.25_nonlocal0.25\n"
                             "r1_k3_s11_e3_i16_o16_se0.25_nonlocal0.5\n")
  keras.utils.set_random_seed(5)
  model = build_model(arch, (16, 16, 3), 5)
  direct = latency.model_tflite(model, (16, 16, 3))
  with tempfile.TemporaryDirectory() as tmp:
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False),
                         input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32)])
    archive.write_out(tmp, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    saved = converter.convert()
  assert tflite.op_counts(direct) == tflite.op_counts(saved)
  assert tflite.op_counts(direct)["MEAN"] >= 2  # the SE squeezes are there
  x = np.random.default_rng(2).standard_normal((1, 16, 16, 3)).astype(np.float32)
  outputs = []
  for flat in (direct, saved):
    interp = Interpreter(model_content=flat)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    outputs.append(interp.get_tensor(interp.get_output_details()[0]["index"]))
    outputs.append(len(interp.get_tensor_details()))
  assert outputs[1] == outputs[3]
  np.testing.assert_allclose(outputs[0], model(x, training=False).numpy(), atol=1e-5)
  np.testing.assert_allclose(outputs[0], outputs[2], atol=1e-6)


class Killed(Exception):
  pass


def test_a_killed_build_is_completed_not_restarted(tmp_path):
  """Two passes: a build killed in the first pass keeps its entries; the
  rerun times the rest of the first pass, then every piece again, and an
  entry is the fastest of its passes."""
  space = get_space("tiny")
  pieces = search_pieces.space_pieces(space, 16, 5)
  keys = ["overhead"] + [p.key for p in pieces]
  path = str(tmp_path / "new_dir" / "lut.json")  # its directory made by the build
  settings = {"what": "tiny", "threads": 1}
  timed = []

  def timer(piece, kill_after=None):
    if kill_after is not None and len(timed) == kill_after:
      raise Killed
    timed.append(piece.key)
    # pass 1 slower than pass 2 for every other piece, faster for the rest (within
    # SETTLE_TOLERANCE: two passes settle every entry)
    i, first_pass = keys.index(piece.key), timed.count(piece.key) == 1
    ms = 1.0 + i + (0.02 if first_pass == (i % 2 == 0) else 0.0)
    return {"ms": ms, "p10_ms": ms, "median_ms": ms, "p90_ms": ms, "repeats": 1}

  with pytest.raises(Killed):
    latency.build_table(pieces, path, settings, 1, 0, 1, timer=lambda p: timer(p, 5), passes=2)
  first = dict(latency.LatencyTable.load(path).entries)
  assert sorted(first) == sorted(timed) and len(first) == 5  # the overhead and 4 pieces
  seen = []
  table = latency.build_table(pieces, path, settings, 1, 0, 1,
                              progress=lambda done, total, key: seen.append((done, total)),
                              timer=timer, passes=2)
  assert timed == keys + keys  # nothing timed twice in one pass
  assert set(table.entries) == set(keys)
  for key, entry in table.entries.items():
    assert len(entry["passes_ms"]) == 2 and entry["ms"] == min(entry["passes_ms"])
  assert len({e["passes_ms"][0] < e["passes_ms"][1] for e in table.entries.values()}) == 2
  assert seen[0] == (6, 2 * len(keys)) and seen[-1][0] == 2 * len(keys)
  with pytest.raises(ValueError, match="other settings"):
    latency.build_table(pieces, path, {"what": "tiny", "threads": 2}, 2, 0, 1, timer=timer)


SETTLING = {"a": [1.00, 1.40, 1.02],             # settled by the 3 passes
            "b": [2.0, 2.6, 2.4, 2.5, 2.05],     # the two fastest agree (2.5%) in pass 5
            "c": [2.0 ** k for k in range(20)]}  # never within 3%: stopped at the cap


def settling_timer(timed, kill_after=None):
  def timer(key):
    if kill_after is not None and len(timed) == kill_after:
      raise Killed
    timed.append(key)
    ms = SETTLING[key][timed.count(key) - 1]
    return {"ms": ms, "p10_ms": ms, "median_ms": ms, "p90_ms": ms, "repeats": 1}
  return timer


def test_an_entry_is_timed_again_until_its_two_fastest_passes_agree():
  """3 passes through a, b, c, then passes through those whose two fastest
  passes differ by more than 3%, up to 8 passes in all; one that never
  agrees is kept (its fastest) and marked unsettled. Killed in a settling
  pass, the rerun times only what was missing."""
  assert (latency.SETTLE_TOLERANCE, latency.SETTLE_MAX_PASSES) == (0.03, 8)
  timed, entries, progress = [], {}, []
  latency.time_in_passes(list(SETTLING), entries, settling_timer(timed), 3, lambda: None,
                         lambda done, total, key: progress.append((done, total)))
  assert timed == list("abc" * 3 + "bc" * 2 + "c" * 3)
  assert [len(entries[k]["passes_ms"]) for k in "abc"] == [3, 5, 8]
  assert [entries[k]["settled"] for k in "abc"] == [True, True, False]
  assert [entries[k]["ms"] for k in "abc"] == [1.0, 2.0, 1.0]
  assert progress[-1] == (16, 16) and progress[8] == (9, 9) and progress[9] == (10, 11)
  timed2, entries2 = [], {}
  with pytest.raises(Killed):
    latency.time_in_passes(list(SETTLING), entries2, settling_timer(timed2, 10), 3, lambda: None)
  latency.time_in_passes(list(SETTLING), entries2, settling_timer(timed2), 3, lambda: None)
  assert timed2 == timed[:10] + list("cbcccc") and entries2 == entries
  assert not latency.settled([1.0]) and latency.settled([1.02, 1.0, 9.0])
  assert latency.settled([1.0, 1.03]) and not latency.settled([1.0, 1.031])


def test_one_model_timed_in_passes_settles_the_same_way(monkeypatch):
  """`time_passes` (a whole network, back to back): b's 5 timings with 3
  passes; a single pass is a single timing, never timed again."""
  for passes, key, calls in ((3, "b", 5), (3, "c", 8), (1, "c", 1)):
    timed = []
    timer = settling_timer(timed)
    monkeypatch.setattr(timing_lib, "time_tflite", lambda *args: timer(key))
    entry = latency.time_passes(b"", 2, 0, 1, passes)
    assert len(timed) == calls and entry["passes_ms"] == SETTLING[key][:calls]
    assert entry["settled"] == (key == "b")


def test_calibration_and_check_networks_are_timed_among_the_pieces_and_resume(tmp_path):
  """Three calibration networks whose whole-network timings are 1.05x, 1.2x
  and 0.9x their pieces' sum and one check network at 3x: each pass times
  the pieces with the four networks spread evenly among them; the scale is
  the calibration networks' median ratio (1.05, the check held out), a
  build killed in its second pass is completed (each piece and network
  timed twice, no more), and a table timed with other networks is refused."""
  space = get_space("tiny")
  pieces = search_pieces.space_pieces(space, 16, 5)
  reference = random_latency_table(space, 16, 5)  # each piece's ms
  reference.calibration = {}
  archs = search_pieces.calibration_archs(space, 4)
  assert archs == search_pieces.calibration_archs(space, 4)  # the same networks every build
  calibration, check = archs[:3], archs[3]
  texts = [arch_lib.format_arch(a) for a in archs]
  factor = dict(zip(texts, (1.05, 1.2, 0.9, 3.0)))
  sums = {t: reference.predict(a, 16, 5) for t, a in zip(texts, archs)}
  timed = []

  def timer(item, kill_after=None):
    if kill_after is not None and len(timed) == kill_after:
      raise Killed
    key = item.key if isinstance(item, latency.Piece) else arch_lib.format_arch(item)
    timed.append(key)
    ms = reference.entry(key) if key in reference.entries else factor[key] * sums[key]
    return {"ms": ms, "p10_ms": ms, "median_ms": ms, "p90_ms": ms, "repeats": 1}

  path = str(tmp_path / "lut.json")
  settings = latency.table_settings("tiny", 16, 5, 1, 0, 1, 2)
  n = len(pieces) + 1  # and the overhead
  build = lambda t, archs=archs: latency.build_table(
      pieces, path, settings, 1, 0, 1, timer=t, passes=2, calibration_archs=archs[:3],
      check_archs=archs[3:])
  with pytest.raises(Killed):
    build(lambda item: timer(item, 7))  # in the first pass, past the first network
  saved = latency.LatencyTable.load(path)
  assert len(saved.entries) == 6 and "scale" not in saved.calibration
  assert [len(x.get("passes_ms", ())) for x in saved.calibration["networks"]] == [1, 0, 0]
  assert [c["arch"] for c in saved.checks] == [texts[3]] and "ms" not in saved.checks[0]
  table = build(timer)
  assert len(timed) == 2 * (n + 4)  # nothing timed twice in one pass
  one_pass = timed[:n + 4]
  assert timed[n + 4:] == one_pass
  # The networks at about (j + 1/2) / 4 of the pieces: after 4, 14, 24 and 34 of the 39.
  at = [one_pass.index(t) for t in texts]
  assert n == 39 and [i - j for j, i in enumerate(at)] == [4, 14, 24, 34]
  assert [k for k in one_pass if k not in texts] == [latency.OVERHEAD] + [p.key for p in pieces]
  assert table.scale == pytest.approx(1.05, rel=1e-9)
  assert latency.LatencyTable.load(path).scale == table.scale
  nets = {x["arch"]: x for x in table.calibration["networks"]}
  assert list(nets) == texts[:3]
  for t in texts[:3]:
    assert nets[t]["pieces_ms"] == pytest.approx(sums[t], rel=1e-9)
    assert len(nets[t]["passes_ms"]) == 2 and nets[t]["ms"] == pytest.approx(factor[t] * sums[t])
  assert [c["arch"] for c in table.checks] == [texts[3]]
  assert table.checks[0]["ms"] / table.checks[0]["pieces_ms"] == pytest.approx(3.0)
  assert table.predict(check, 16, 5) == pytest.approx(1.05 * sums[texts[3]])
  assert len(table.timings) == n + 4
  with pytest.raises(ValueError, match="other calibration or check networks"):
    build(timer, archs=archs[1:])
  assert settings["calibration"] == latency.CALIBRATION_RULE
  with pytest.raises(ValueError, match="other settings"):
    latency.build_table(pieces, path, dict(settings, calibration="timed after the pieces"),
                        1, 0, 1, timer=timer, passes=2, calibration_archs=calibration)


def test_a_file_that_is_no_table_is_named(tmp_path):
  path = tmp_path / "x.json"
  path.write_text('{"a": 1}')
  with pytest.raises(ValueError, match="is not a latency table"):
    latency.LatencyTable.load(str(path))


def test_the_latency_cost_is_the_table_sum_of_the_derived_network(tmp_path):
  """For random hard gate settings the supernet's differentiable latency
  equals the table's prediction for the network it derives (every entry
  distinct, so a wrong option or a doubly counted gate shows)."""
  from autonl_tf.data import DataConfig
  from autonl_tf.search.runner import SearchConfig, make_supernet
  for space in ("tiny", "cifar"):
    size, classes = (16, 5) if space == "tiny" else (32, 10)
    net = make_supernet(SearchConfig(space=space, data=DataConfig("synthetic", input_size=size,
                                                                  num_classes=classes),
                                     model_dir=str(tmp_path)), classes)
    table = random_latency_table(net.space, size, classes)
    net.attach_latency_table(table)
    rng = np.random.default_rng(7)
    for _ in range(6):
      bits = rng.integers(0, 2, len(net.decision_names))
      net.force_state(dict(zip(net.decision_names, (int(b) for b in bits))))
      expected = table.predict(net.derive(), size, classes)
      assert float(net.latency()) == pytest.approx(expected, rel=1e-5)


def test_contention_is_measured_and_a_contended_timing_retried(monkeypatch):
  """Issue 41: other processes' cores = (machine busy - this process's CPU) /
  wall; a 2-thread timing on 2 cores is contended above a quarter core, a
  1-thread one above 1.25; a contended timing is retried until idle."""
  assert latency.others_cores((10.0, 3.0, 100.0), (12.0, 4.5, 104.0)) == pytest.approx(1.25)
  assert latency.others_cores((10.0, 3.0, None), (12.0, 4.5, 104.0)) is None
  assert latency.others_cores((10.0, 3.0, 100.0), (12.0, 5.0, 101.0)) == 0.0  # ticks lag
  monkeypatch.setattr(timing_lib.os, "cpu_count", lambda: 2)
  assert [latency.contended(x, 2) for x in (None, 0.2, 0.3)] == [False, False, True]
  assert [latency.contended(x, 1) for x in (1.2, 1.3)] == [False, True]
  # Snapshots: two busy windows (the other core fully used), then an idle one.
  loads = iter([1.0, 1.0, 0.0])
  clock = {"t": 0.0, "busy": 0.0}

  def snapshot():
    clock["t"] += 1.0
    return clock["t"], 0.0, clock["busy"]

  def invokes(*args):
    clock["busy"] += next(loads)  # CPU seconds of others over the next 1 s window
    return {"ms": 1.0}

  sleeps = []
  monkeypatch.setattr(timing_lib, "_cpu_snapshot", snapshot)
  monkeypatch.setattr(timing_lib, "_time_invokes", invokes)
  monkeypatch.setattr(timing_lib.time, "sleep", sleeps.append)
  timing = latency.time_tflite(b"", threads=2, warmup=1, repeats=1)
  assert timing["contended"] is False and timing["others_cores"] == 0.0 and sleeps == [1.0, 1.0]
  loads = iter([1.0] * 10)
  timing = latency.time_tflite(b"", threads=2, warmup=1, repeats=1)
  assert timing["contended"] is True and len(sleeps) == 2 + latency.CONTENTION_RETRIES
  entry = latency.add_pass(latency.add_pass(None, dict(timing, contended=False)), timing)
  assert entry["contended_passes"] == 1 and entry["passes_ms"] == [1.0, 1.0]
