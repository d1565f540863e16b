"""Architecture strings: parsing, formatting, presets and errors (pure Python)."""

import dataclasses

import pytest

from autonl_tf import arch


def test_every_token_parses():
  spec = arch.parse_block("r2_k3.5.7_a1.1_p1.1_s22_e6_i40_o80_se0.25_noskip_sw_nonlocal0.125-2")
  assert spec == arch.BlockSpec(
      repeats=2, kernel_sizes=(3, 5, 7), strides=(2, 2), expand_ratio=6, in_filters=40,
      out_filters=80, se_ratio=0.25, id_skip=False, swish=True, expand_kernel_sizes=(1, 1),
      project_kernel_sizes=(1, 1), nl_ratio=0.125, nl_stride=2)


@pytest.mark.parametrize("token,ratio,stride", [
    ("nonlocal", 1.0, 1), ("nonlocal0.25", 0.25, 1), ("nonlocal0.125-2", 0.125, 2),
    ("nonlocal.5-2", 0.5, 2), ("nonlocal1", 1.0, 1)])
def test_nonlocal_token_forms(token, ratio, stride):
  spec = arch.parse_block(f"r1_k3_s11_e3_i16_o16_{token}")
  assert (spec.nl_ratio, spec.nl_stride) == (ratio, stride)


def test_example_from_the_docs():
  spec = arch.parse_block("r1_k5_s22_e6_i40_o80_se0.25_nonlocal0.25-2")
  assert (spec.kernel_sizes, spec.strides, spec.se_ratio, spec.nl_ratio, spec.nl_stride) == (
      (5,), (2, 2), 0.25, 0.25, 2)
  assert not spec.swish and spec.id_skip
  assert arch.format_block(spec) == "r1_k5_s22_e6_i40_o80_se0.25_nonlocal0.25-2"


@pytest.mark.parametrize("line", [
    "r1_k3_s11_e1_i32_o16",
    "r2_k3.5.7_a1.1_p1.1_s22_e6_i40_o80_se0.25_noskip_sw_nonlocal0.125-2",
    "r1_k5_s21_e3_i8_o8_nonlocal1.0",
    "r3_k7_p1.3_s11_e6_i16_o16_se0.5_nonlocal0.5",
])
def test_canonical_lines_round_trip(line):
  spec = arch.parse_block(line)
  assert arch.format_block(spec) == line
  assert arch.parse_block(arch.format_block(spec)) == spec


@pytest.mark.parametrize("name", ["autonl-s", "autonl-l", "mobilenet-v2"])
def test_presets_round_trip(name):
  a = arch.load(name)
  assert arch.parse_arch(arch.format_arch(a)) == a
  with open(arch.preset_path(name)) as f:
    block_lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
  assert [arch.format_block(b) for b in a.blocks] == block_lines


def test_published_block_tables():
  s = arch.expand_blocks(arch.load("autonl-s"))
  l = arch.expand_blocks(arch.load("autonl-l"))
  assert len(s) == 18 and len(l) == 21
  # AutoNL-S block by block as the official arch file gives it: expand, out,
  # kernel, stride, r, s, se per block.
  table_s = [(1, 16, 3, 1, 0, 1, 0), (3, 24, 3, 2, .25, 1, 0), (3, 24, 3, 1, 0, 1, 0),
             (3, 40, 5, 2, .25, 1, 0), (3, 40, 3, 1, .25, 2, 0), (3, 40, 3, 1, 0, 1, 0),
             (6, 80, 5, 2, .25, 1, .25), (3, 80, 3, 1, 0, 1, .5), (3, 80, 3, 1, 0, 1, .5),
             (6, 96, 5, 1, .25, 1, .25)] + [(3, 96, 3, 1, 0, 1, .5)] * 3 + [
             (6, 192, 5, 2, .25, 1, .25)] + [(3, 192, 5, 1, 0, 1, .5)] * 3 + [
             (6, 320, 5, 1, .25, 1, .5)]
  got = [(b.expand_ratio, b.out_filters, b.kernel_sizes[0], b.strides[0], b.nl_ratio,
          b.nl_stride, b.se_ratio) for b in s]
  assert got == table_s
  nl_l = [(b.out_filters, b.nl_ratio, b.nl_stride) for b in l if b.has_nonlocal]
  assert nl_l == [(24, .25, 1), (24, .25, 2), (40, .25, 1), (40, .25, 2), (40, .25, 2),
                  (40, .25, 2), (80, .25, 1), (80, .125, 2), (96, .25, 1), (96, .25, 2),
                  (192, .25, 1), (192, .125, 1), (192, .125, 1), (320, .25, 1)]


def test_expand_blocks_repeats():
  a = arch.parse_arch("r3_k3_s22_e6_i16_o24\n")
  blocks = arch.expand_blocks(a)
  assert [(b.strides, b.in_filters, b.repeats) for b in blocks] == [
      ((2, 2), 16, 1), ((1, 1), 24, 1), ((1, 1), 24, 1)]


def test_directive_and_comments():
  text = "# a searched net\n#! stem_stride=1 head_filters=640\n\nr1_k3_s11_e1_i32_o16\n"
  a = arch.parse_arch(text)
  assert (a.stem_stride, a.stem_filters, a.head_filters) == (1, 32, 640)
  assert arch.parse_arch(arch.format_arch(a)) == a
  assert arch.format_arch(a).startswith("#! stem_stride=1 head_filters=640\n")


def test_specs_are_immutable():
  spec = arch.parse_block("r1_k3_s11_e1_i32_o16")
  with pytest.raises(dataclasses.FrozenInstanceError):
    spec.repeats = 2


def _error(text):
  with pytest.raises(ValueError) as info:
    arch.parse_arch(text)
  return str(info.value)


GOOD = "r1_k3_s11_e1_i32_o16"


@pytest.mark.parametrize("bad,token,why", [
    ("r1_k3_s11_e1_i16_o16_x5", "x5", "unknown token"),
    ("r1_k3_s11_e1_i16_o16_skip", "skip", "unknown token"),
    ("r1_k3_s11_e1_i16_o16_nonlocalX", "nonlocalX", "expected nonlocal"),
    ("r1_k3_s2_e1_i16_o16", "s2", "two digits"),
    ("r1_k3_s222_e1_i16_o16", "s222", "two digits"),
    ("r1_k3_s20_e1_i16_o16", "s20", "positive"),
    ("r0_k3_s11_e1_i16_o16", "r0", "positive"),
    ("r1_k3_s11_e0_i16_o16", "e0", "positive"),
    ("r1_k3_s11_e1_i16_o-4", "o-4", "positive integer"),
    ("r1_k0_s11_e1_i16_o16", "k0", "positive"),
    ("r1_k3..5_s11_e1_i16_o16", "k3..5", "dot-separated"),
    ("r1_k4_s11_e1_i16_o16", "k4", "even"),
    ("r1_k3_s11_e1_i16_o16_se1.5", "se1.5", "outside (0, 1]"),
    ("r1_k3_s11_e1_i16_o16_se0", "se0", "outside (0, 1]"),
    ("r1_k3_s11_e1_i16_o16_nonlocal0", "nonlocal0", "outside (0, 1]"),
    ("r1_k3_s11_e1_i16_o16_nonlocal2.0", "nonlocal2.0", "outside (0, 1]"),
    ("r1_k3_s11_e1_i16_o16_nonlocal0.25-0", "nonlocal0.25-0", "positive"),
    ("r1_k3_k5_s11_e1_i16_o16", "k5", "given twice"),
])
def test_malformed_token_names_line_and_token(bad, token, why):
  message = _error(f"{GOOD}\n" + bad.replace("i16", "i16") + "\n")
  assert message.startswith("line 2:"), message
  assert f"'{token}'" in message and why in message, message


@pytest.mark.parametrize("missing", ["r", "k", "s", "e", "i", "o"])
def test_missing_token(missing):
  tokens = {"r": "r1", "k": "k3", "s": "s11", "e": "e1", "i": "i32", "o": "o16"}
  del tokens[missing]
  message = _error("_".join(tokens.values()))
  assert message.startswith("line 1:") and f"missing the '{missing}' token" in message


def test_inconsistent_channels():
  message = _error("r1_k3_s11_e1_i32_o16\n# comment\nr1_k3_s22_e6_i24_o24\n")
  assert message.startswith("line 3:") and "'i24'" in message and "o16" in message


def test_empty_and_bad_directive():
  assert "no block lines" in _error("# only a comment\n")
  assert "'depth=2'" in _error("#! depth=2\n" + GOOD)


def test_load_errors(tmp_path):
  with pytest.raises(ValueError, match="neither a preset"):
    arch.load("autonl-xl")
  bad = tmp_path / "arch.txt"
  bad.write_text("r1_k3_s11_e1_i32_o16\nr1_k3_s11_e1_i16_o16_bogus\n")
  with pytest.raises(ValueError, match=r"arch.txt: line 2: bad token 'bogus'"):
    arch.load(str(bad))
  binary = tmp_path / "arch.bin"
  binary.write_bytes(b"\xff\xfe\x00")
  with pytest.raises(ValueError, match="cannot read arch file"):
    arch.load(str(binary))


def test_load_from_sequences():
  lines = ["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24"]
  a = arch.load(lines)
  assert arch.load(list(a.blocks)) == a
  assert arch.format_arch(a) == "\n".join(lines) + "\n"


@pytest.mark.parametrize("text,message", [
    ("r1_k3_s11_e1_i32_o99999999",  # issue 18: 131,400,015,336 params, and profile said so
     "line 1: 'o99999999': 99,999,999 output channels, above the limit of 16,384 "
     "(raise it with --arch_limits=width=N)"),
    ("r1_k3_s11_e1_i20000_o32", "'i20000': 20,000 input channels"),
    ("r1_k3_s11_e6_i4000_o32", "'e6': 24,000 expanded channels, above the limit of 16,384"),
    ("r1_k3_s11_e33_i8_o8", "'e33': expand ratio 33, above the limit of 32"),
    ("r1_k3.33_s11_e1_i8_o8", "'k3.33': kernel size 33, above the limit of 31"),
    ("r1_k3_p35_s11_e1_i8_o8", "'p35': kernel size 35"),
    ("r10000_k3_s11_e1_i8_o8", "line 1: 'r10000': 10,000 repeats, above the limit of 512 "
     "(raise it with --arch_limits=depth=N)"),
    ("\n".join(["r1_k3_s11_e1_i8_o8"] * 10000),  # the 10,000-block arch of the issue
     "the arch has 10,000 blocks, above the limit of 512 (raise it with --arch_limits=depth=N)"),
    ("#! head_filters=99999\nr1_k3_s11_e1_i8_o8", "'head_filters=99999': 99,999 channels"),
])
def test_arch_limits_at_parse_time(text, message):
  with pytest.raises(arch.ArchLimitError) as e:
    arch.parse_arch(text)
  assert message in str(e.value)
  raised = arch.ArchLimits(width=10 ** 9, depth=20000, kernel=35, expand=40, params=1e15,
                           macs=1e18)
  assert arch.parse_arch(text, raised).blocks  # the limits can be raised


def test_arch_limits_on_parameters_and_macs(tmp_path):
  from autonl_tf import flops
  wide = arch.parse_arch("r1_k3_s11_e1_i32_o16000\nr1_k3_s11_e1_i16000_o16000")
  with pytest.raises(arch.ArchLimitError, match=r"the network at 224x224 with 10 classes has "
                     r"3,476,424,503,808 MACs, above the limit of 1,000,000,000,000 "
                     r"\(raise it with --arch_limits=macs=N\)"):
    flops.check_limits(wide, 224, 10)
  assert flops.check_limits(wide, 8, 10).macs == flops.count(wide, 8, 10).macs
  with pytest.raises(arch.ArchLimitError, match="has 277,248,650 parameters, above the limit of 1,000 "):
    flops.check_limits(wide, 8, 10, arch.ArchLimits(params=1000))
  # Real networks are far inside the defaults.
  assert flops.check_limits(arch.load("autonl-l"), 224, 1000).params == 5_580_336
  # An Arch object and an arch file are checked too.
  with pytest.raises(arch.ArchLimitError, match="'r600'"):
    arch.load(dataclasses.replace(wide, blocks=(dataclasses.replace(wide.blocks[0], repeats=600),)))
  path = tmp_path / "big.txt"
  path.write_text("r1_k3_s11_e1_i32_o99999999\n")
  with pytest.raises(arch.ArchLimitError, match=f"{path}: line 1: 'o99999999'"):
    arch.load(str(path))
  assert arch.load(str(path), arch.ArchLimits(width=10 ** 8)).blocks[0].out_filters == 99999999


def test_arch_limits_from_strings():
  assert arch.ArchLimits.parse(["params=2e9", "depth=1000"]) == arch.ArchLimits(
      params=2e9, depth=1000)
  for bad, message in [(["size=3"], "unknown arch limit 'size=3'"),
                       (["depth=x"], "'x' is not a number"), (["width=0"], "must be positive")]:
    with pytest.raises(ValueError, match=message):
      arch.ArchLimits.parse(bad)
