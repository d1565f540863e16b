"""From a searched supernet to a network: the derived `Arch`, its files, and
(for checks and warm starts) the child's weights sliced out of the supernet."""

import json
import os


from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf.layers.mbconv import MBConv


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
    spec = sb.derive()
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


def write_derived(supernet, model_dir, extra=None, arch=None):
  """Writes `arch.txt` (official format) and `decisions.json` (every gate,
  threshold / logit, MACs and params of the derived network); `arch`
  defaults to the supernet's current hard architecture."""
  landed = arch
  arch = arch or supernet.derive()
  count = flops.count(arch, supernet.input_size, supernet.num_classes)
  text = arch_lib.format_arch(arch)
  info = {"arch": text.splitlines(), "macs": count.macs, "params": count.params,
          "supernet_macs": float(supernet.macs()), "lambda": float(supernet.lam.numpy()),
          "target_macs": supernet.target_macs or None, "cost": supernet.cost_mode,
          "space": supernet.space.name, "input_size": supernet.input_size,
          "num_classes": supernet.num_classes, "decisions": supernet.decisions()}
  # True when the target-mode landing picked an earlier final-epoch
  # architecture than the last one (then "decisions" shows the last).
  info["landed_earlier"] = landed is not None and landed != supernet.derive()
  info.update(extra or {})
  os.makedirs(model_dir, exist_ok=True)
  from autonl_tf.io import write_text as atomic_write_text
  atomic_write_text(os.path.join(model_dir, "arch.txt"), text)
  atomic_write_text(os.path.join(model_dir, "decisions.json"), json.dumps(info, indent=2) + "\n")
  return arch, info
