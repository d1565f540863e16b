"""Analytic MACs / params against hand computation and the published figures."""

import pytest

from autonl_tf import arch, flops


@pytest.mark.parametrize("name,macs_m,params_m", [("autonl-s", 266.9, 4.39), ("autonl-l", 352.8, 5.58)])
def test_published_totals(name, macs_m, params_m):
  c = flops.count(arch.load(name), 224, 1000)
  assert round(c.macs / 1e6, 1) == macs_m
  assert round(c.params / 1e6, 2) == params_m
  # The paper's table rounds to 4.4M / 5.6M.
  assert round(c.params / 1e6, 1) == round(params_m, 1)


def test_mobilenet_v2_about_300m():
  c = flops.count(arch.load("mobilenet-v2"), 224, 1000)
  assert abs(c.macs / 300e6 - 1) < 0.01
  assert abs(c.params / 3.5e6 - 1) < 0.01


def test_lightnl_orders_by_hand():
  # 56x56, C=24, r=1/4, s=1: A = 3136*3136*(24+6), B = 3136*6*24*2.
  a, b = flops.lightnl_orders(56, 56, 24, 0.25, 1)
  assert (a, b) == (3136 * 3136 * 30, 3136 * 6 * 24 * 2)
  assert flops.lightnl_macs(56, 56, 24, 0.25, 1) == b + 9 * 3136 * 24
  # 7x7, C=320, r=1/4, s=1: A = 49*49*400 = 960,400 < B = 49*80*320*2 = 2,508,800.
  assert flops.lightnl_orders(7, 7, 320, 0.25, 1) == (960_400, 2_508_800)
  assert flops.use_order_a(7, 7, 320, 0.25, 1)
  assert flops.lightnl_macs(7, 7, 320, 0.25, 1) == 960_400 + 9 * 49 * 320
  # 7x7 with s=2 keeps ceil(7/2)^2 = 16 key positions: A = 49*16*(64+16).
  assert flops.lightnl_orders(7, 7, 64, 0.25, 2)[0] == 49 * 16 * 80


def test_block_by_hand():
  # r1_k5_s22_e6_i40_o80_se0.25_nonlocal0.25 on 28x28 (AutoNL-S block 6).
  spec = arch.parse_block("r1_k5_s22_e6_i40_o80_se0.25_nonlocal0.25")
  b = flops.count_block(spec, 28, 28)
  expand = 40 * 240 * 28 * 28
  dw = 25 * 240 * 14 * 14
  se = 14 * 14 * 240 + 240 * 10 + 10 * 240
  project = 240 * 80 * 14 * 14
  nl = min(196 * 196 * (80 + 20), 196 * 20 * 80 * 2) + 9 * 196 * 80
  assert dict(b.macs_by_op) == {"expand": expand, "depthwise": dw, "se": se,
                                "project": project, "lightnl": nl}
  assert b.macs == 13_285_760 == expand + dw + se + project + nl
  params = (40 * 240 + 480) + (25 * 240 + 480) + (240 * 10 + 10 + 10 * 240 + 240) + (
      240 * 80 + 160) + (9 * 80 + 160)
  assert b.params == params


def test_mixed_and_grouped_by_hand():
  spec = arch.parse_block("r1_k3.5.7_a1.3_s11_e3_i10_o10")
  b = flops.count_block(spec, 8, 8)
  # expand: groups of 5 -> 15 channels each (1x1 and 3x3); depthwise split 30 -> 10,10,10.
  expand = (1 * 5 * 15 + 9 * 5 * 15) * 64
  dw = (9 + 25 + 49) * 10 * 64
  assert dict(b.macs_by_op)["expand"] == expand
  assert dict(b.macs_by_op)["depthwise"] == dw
  assert flops.split_channels(11, 3) == [5, 3, 3]


def test_stem_and_head_by_hand():
  c = flops.count(arch.load("autonl-s"), 224, 1000)
  assert c.stem_macs == 27 * 32 * 112 * 112
  assert c.head_macs == 320 * 1280 * 49 + 49 * 1280 + 1280 * 1000
  assert c.head_params == 320 * 1280 + 2 * 1280 + 1280 * 1000 + 1000
  assert c.macs == c.stem_macs + c.head_macs + sum(b.macs for b in c.blocks)


def test_conventional_nonlocal_formula():
  # Wang et al.'s block with C/2 inner width: 3*HW*C*C/2 + 2*(HW)^2*C/2 + HW*C/2*C.
  hw, c = 14 * 14, 96
  assert flops.nonlocal_macs(14, 14, 96) == 3 * hw * c * 48 + 2 * hw * hw * 48 + hw * 48 * c


def test_cifar_size_counts():
  c = flops.count(arch.load("autonl-s"), 32, 10)
  assert c.blocks[-1].out_size == (1, 1)
  assert c.head_macs == 320 * 1280 + 1280 + 1280 * 10
  assert c.input_size == (32, 32)
