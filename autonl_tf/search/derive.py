"""From a searched supernet to a network: the hard decisions as an `Arch`
(and back, `decision_state`), the files `arch.txt` / `decisions.json`, and
(for checks and warm starts) the child's weights sliced out of the supernet.
Which visited architecture a search returns is `search.landing`'s."""

import json
import os

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf import io
from autonl_tf import run_files
from autonl_tf.layers.mbconv import MBConv
from autonl_tf.search.space import option_spec


def block_spec(block):
  """A `SuperMBConv`'s hard decisions as a `BlockSpec` (None: skipped)."""
  g = {k: float(v) for k, v in block.gates(False).items() if k != "kernel"}
  if g["e_small"] < 0.5:
    return None
  kernel = 7 if g.get("k7", 0) > 0.5 else 5 if g.get("k5", 0) > 0.5 else 3
  expand = block.expand_ratios[1] if g["e_large"] > 0.5 else block.expand_ratios[0]
  nl_ratio, nl_stride = 0.0, 1
  if g["nl"] > 0.5:
    idx = sum(1 for i in range(1, len(block.nl_ratios)) if g[f"r{i}"] > 0.5)
    nl_ratio = block.nl_ratios[idx]
    nl_stride = (1 if g["s1"] > 0.5 else 2) if len(block.nl_strides) == 2 else block.nl_strides[0]
  return option_spec(block.in_filters, block.out_filters, block.stride, block.se_ratio, kernel,
                     expand, nl_ratio, nl_stride)


def derive_arch(supernet) -> arch_lib.Arch:
  """The supernet's hard decisions as an `Arch` (skipped blocks left out)."""
  return supernet.space.arch(
      spec for spec in (block_spec(b) for b in supernet.blocks) if spec is not None)


def decision_state(supernet, arch) -> dict:
  """The inverse of `derive_arch`: the decision state ({`<block>/<decision>`:
  0/1}, as `SuperNet.force_state` takes it) under which `supernet` derives
  `arch` (an `Arch`, a preset name or an arch file). The blocks of `arch`
  take the searchable positions in order, a skippable position left out
  when the next block does not fit it.

  Raises:
    ValueError: `arch` is not one of the space's networks, naming the first
      block (or the stem, head, first block or `#!` setting) that is not.
  """
  space = supernet.space
  target = arch_lib.load(arch)
  fixed = 1 if space.first_block else 0
  rest = list(target.blocks[fixed:])
  state, j = {}, 0
  for block, (_, _, cin, cout, stride, se, skippable) in zip(supernet.blocks, space.blocks()):
    spec = rest[j] if j < len(rest) else None
    fits = spec is not None and (spec.in_filters, spec.out_filters, spec.strides[0]) == (
        cin, cout, stride)
    if not fits and not skippable:
      where = f"block {fixed + j + 1} ({arch_lib.format_block(spec)})" if spec else "its end"
      raise ValueError(f"the architecture is not in the space '{space.name}': at {where} the "
                       f"space has a {cin}->{cout} stride-{stride} block that cannot be skipped")
    bits = dict.fromkeys(block.decisions, 0)
    if fits:
      j += 1
      kernel = spec.kernel_sizes[0]
      choices = (len(spec.kernel_sizes) == 1 and kernel in block.kernel_sizes
                 and spec.expand_ratio in block.expand_ratios
                 and (spec.nl_ratio == 0 or (spec.nl_ratio in block.nl_ratios
                                             and spec.nl_stride in block.nl_strides)))
      # The choices can be the space's while the block is not (SE, repeats, a skip flag).
      if not choices or spec != option_spec(cin, cout, stride, se, kernel, spec.expand_ratio,
                                            spec.nl_ratio, spec.nl_stride):
        raise ValueError(f"the architecture is not in the space '{space.name}': its block "
                         f"{fixed + j} ({arch_lib.format_block(spec)}) is no option of the "
                         f"space's {cin}->{cout} stride-{stride} block (kernels "
                         f"{block.kernel_sizes}, expansions {block.expand_ratios}, SE {se:g}, "
                         f"LightNL ratios {block.nl_ratios}, strides {block.nl_strides})")
      bits.update({"k5": int(kernel >= 5), "k7": int(kernel == 7), "e_small": 1,
                   "e_large": int(spec.expand_ratio == block.expand_ratios[1]),
                   "nl": int(spec.nl_ratio > 0), "s1": int(spec.nl_stride == 1)})
      if spec.nl_ratio > 0:
        index = block.nl_ratios.index(spec.nl_ratio)
        bits.update({f"r{i}": int(index >= i) for i in range(1, len(block.nl_ratios))})
    state.update({f"{block.name}/{d}": bits[d] for d in block.decisions})
  if j < len(rest):
    raise ValueError(f"the architecture is not in the space '{space.name}': its block "
                     f"{fixed + j + 1} ({arch_lib.format_block(rest[j])}) is past the space's "
                     "last position")
  held = space.arch(rest)
  if held != target:
    diff = [f"{k}={getattr(target, k)!r} (the space's: {getattr(held, k)!r})"
            for k in ("stem_stride", "stem_filters", "head_filters", "activation", "nl_norm")
            if getattr(target, k) != getattr(held, k)]
    if fixed and target.blocks[0] != held.blocks[0]:
      diff.append(f"first block {arch_lib.format_block(target.blocks[0])} (the space's: "
                  f"{space.first_block})")
    raise ValueError(f"the architecture is not in the space '{space.name}': "
                     + ("; ".join(diff) or "its fixed parts differ"))
  return state


def _bn_copy(src, dst, n=None):
  for a in ("gamma", "beta", "moving_mean", "moving_variance"):
    value = getattr(src, a).numpy()
    getattr(dst, a).assign(value if n is None else value[:n])


def copy_child_weights(supernet, child):
  """Copies the supernet's weights of the current hard architecture into
  `child` (a `build_model` of `supernet.derive()`)."""
  child.get_layer("stem_conv").kernel.assign(supernet.stem_conv.kernel)
  _bn_copy(supernet.stem_bn, child.get_layer("stem_bn"))
  child_blocks = [l for l in child.layers if isinstance(l, MBConv)]
  it = iter(child_blocks)
  if supernet.first is not None:
    dst = next(it)
    for s, d in zip(supernet.first.weights, dst.weights):
      d.assign(s)
  for sb in supernet.blocks:
    spec = block_spec(sb)
    if spec is None:
      continue
    dst = next(it)
    e = spec.in_filters * spec.expand_ratio
    k = spec.kernel_sizes[0]
    dst.expand_conv.convs[0].kernel.assign(sb.expand_conv.kernel.numpy()[..., :e])
    _bn_copy(sb.expand_bn, dst.expand_bn, e)
    kmax = sb.dw_kernel.shape[0]
    o = (kmax - k) // 2
    dst.dw_conv.convs[0].kernel.assign(sb.dw_kernel.numpy()[o:o + k, o:o + k, :e])
    _bn_copy(sb.dw_bn, dst.dw_bn, e)
    if sb.se is not None:
      dst.se.se_reduce.kernel.assign(sb.se.se_reduce.kernel.numpy()[:, :, :e])
      dst.se.se_reduce.bias.assign(sb.se.se_reduce.bias)
      dst.se.se_expand.kernel.assign(sb.se.se_expand.kernel.numpy()[..., :e])
      dst.se.se_expand.bias.assign(sb.se.se_expand.bias.numpy()[:e])
    dst.project_conv.convs[0].kernel.assign(sb.project_conv.kernel.numpy()[:, :, :e])
    _bn_copy(sb.project_bn, dst.project_bn)
    if dst.nl is not None:
      dst.nl.nl_dw.kernel.assign(sb.nl_dw.kernel)
      _bn_copy(sb.nl_bn, dst.nl.nl_bn)
  child.get_layer("head_conv").kernel.assign(supernet.head_conv.kernel)
  _bn_copy(supernet.head_bn, child.get_layer("head_bn"))
  child.get_layer("logits").kernel.assign(supernet.classifier.kernel)
  child.get_layer("logits").bias.assign(supernet.classifier.bias)


def write_derived(supernet, model_dir, extra=None):
  """Writes `arch.txt` (official format) and `decisions.json` (every gate,
  its threshold / logit and margin, MACs and params) of the supernet's
  current hard architecture — force the chosen state first
  (`SuperNet.force_state`) so that both describe it."""
  arch = supernet.derive()
  count = flops.count(arch, supernet.input_size, supernet.num_classes)
  text = arch_lib.format_arch(arch)
  info = {"arch": text.splitlines(), "macs": count.macs, "params": count.params,
          "supernet_macs": float(supernet.macs()), "lambda": float(supernet.lam.numpy()),
          "target_macs": supernet.target_macs or None, "cost": supernet.cost_mode,
          "cost_model": supernet.cost_model,
          "space": supernet.space.name,
          "width_multiplier": supernet.space.width_multiplier, "input_size": supernet.input_size,
          "num_classes": supernet.num_classes, "decisions": supernet.decisions()}
  if supernet.cost_model == "latency":
    info.update(target_latency_ms=supernet.target_latency_ms or None,
                latency_ms=float(supernet.latency()))
  info.update(extra or {})
  os.makedirs(model_dir, exist_ok=True)
  io.write_text(os.path.join(model_dir, run_files.ARCH), text)
  io.write_text(os.path.join(model_dir, run_files.DECISIONS), json.dumps(info, indent=2) + "\n")
  return arch, info
