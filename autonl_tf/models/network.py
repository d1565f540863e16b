"""Builds the MnasNet-style AutoNL network from an architecture."""

import os
from typing import Optional, Sequence, Union

import keras

from autonl_tf import arch as arch_lib
from autonl_tf import constants
from autonl_tf import flops
from autonl_tf.layers import activations
from autonl_tf.layers import batch_norm
from autonl_tf.layers.mbconv import MBConv


def _check_input_shape(input_shape):
  if len(input_shape) != 3:
    raise ValueError(f"input_shape must be (height, width, 3), got {tuple(input_shape)}")
  h, w, c = input_shape
  if c != 3:
    raise ValueError(f"input_shape must have 3 (RGB) channels, got {c} in {tuple(input_shape)}")
  if h is None or w is None or int(h) < 1 or int(w) < 1:
    raise ValueError("input_shape needs a static, positive height and width (LightNL picks its "
                     f"product order from them), got {tuple(input_shape)}")
  return int(h), int(w), 3


def build_model(arch: Union[str, os.PathLike, arch_lib.Arch, Sequence],
                input_shape=(constants.INPUT_SIZE, constants.INPUT_SIZE, 3),
                num_classes: int = constants.NUM_CLASSES,
                dropout_rate: float = constants.DROPOUT_RATE,
                drop_connect_rate: float = 0.0,
                bn_momentum: float = constants.BN_MOMENTUM,
                bn_epsilon: float = constants.BN_EPSILON,
                sync_bn: bool = False,
                zero_init_residual: bool = True,
                name: str = "autonl",
                arch_limits: Optional[arch_lib.ArchLimits] = None) -> keras.Model:
  """Returns a functional `keras.Model` for `arch`: the MnasNet-style
  networks of arXiv 2004.01961 (AutoNL-S / AutoNL-L, its table of results).

  stem (3x3 conv, stride 2, BN, swish) -> MBConv blocks (`block_<i>`) ->
  head (1x1 conv to 1280, BN, swish, global pool, dropout, dense logits);
  the arch's `activation` (its `#!` line) replaces every swish but the SE's,
  its `nl_norm` sets every LightNL's product.

  Args:
    arch: a preset name (`autonl-s`, `autonl-l`, `mobilenet-v2`), the path of
      an arch file, an `Arch`, or a sequence of block strings / `BlockSpec`s.
    input_shape: (height, width, 3); any size works, e.g. 32x32 for CIFAR.
      The model expects images normalised with the ImageNet mean/std.
    num_classes: width of the classifier.
    dropout_rate: dropout before the classifier.
    drop_connect_rate: maximum drop-connect rate, scaled linearly with depth
      (block i of n uses `rate * i / n`, as MnasNet / EfficientNet).
    bn_momentum: batch-norm momentum.
    bn_epsilon: batch-norm epsilon.
    sync_bn: batch statistics over all replicas of a tf.distribute strategy.
    zero_init_residual: residual blocks start as the identity (see `MBConv`).
    name: model name.
    arch_limits: bounds on widths, depth, kernels, parameters and MACs at
      `input_shape` (default `ArchLimits()`), checked before anything is built.

  Under a mixed-precision policy (`mixed_bfloat16`, `mixed_float16`) the
  layers compute in 16 bits with float32 variables; the logits stay float32.

  Returns:
    a `keras.Model` mapping `[N, H, W, 3]` float images to `[N, num_classes]`
    logits.

  Raises:
    ArchLimitError: `arch` is above `arch_limits`.
  """
  arch = arch_lib.load(arch, arch_limits)
  input_shape = _check_input_shape(input_shape)
  if int(num_classes) < 1:
    raise ValueError(f"num_classes must be positive, got {num_classes}")
  flops.check_limits(arch, input_shape[:2], int(num_classes), arch_limits)
  if not 0 <= dropout_rate < 1:
    raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
  bn = lambda n: batch_norm.paper_batch_norm(n, momentum=bn_momentum, epsilon=bn_epsilon,
                                             synchronized=sync_bn)

  inputs = keras.Input(shape=input_shape, name="images")
  x = stem(inputs, arch, bn)
  blocks = arch_lib.expand_blocks(arch)
  for i, spec in enumerate(blocks):
    x = MBConv(spec, drop_connect_rate=drop_connect_rate * i / len(blocks),
               bn_momentum=bn_momentum, bn_epsilon=bn_epsilon, sync_bn=sync_bn,
               zero_init_residual=zero_init_residual, activation=arch.activation,
               nl_norm=arch.nl_norm, name=f"block_{i}")(x)
  outputs = head(x, arch, num_classes, bn, dropout_rate)
  return keras.Model(inputs, outputs, name=name)


def _default_bn(name):
  return batch_norm.paper_batch_norm(name)


def stem(x, arch: arch_lib.Arch, bn=_default_bn):
  """The 3x3 stem conv (stride `arch.stem_stride`), BN and the arch's
  activation."""
  x = keras.layers.Conv2D(
      arch.stem_filters, 3, strides=arch.stem_stride, padding="same", use_bias=False,
      kernel_initializer=constants.conv_initializer(), name="stem_conv")(x)
  act = activations.layer(arch.activation, f"stem_{arch.activation}")
  return act(bn("stem_bn")(x))


def head(x, arch: arch_lib.Arch, num_classes: int, bn=_default_bn, dropout_rate: float = 0.0):
  """The 1x1 head conv to `arch.head_filters`, BN, the arch's activation,
  global average pooling, dropout and the dense classifier (float32
  logits)."""
  x = keras.layers.Conv2D(
      arch.head_filters, 1, use_bias=False,
      kernel_initializer=constants.conv_initializer(), name="head_conv")(x)
  x = activations.layer(arch.activation, f"head_{arch.activation}")(bn("head_bn")(x))
  x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
  if dropout_rate > 0:
    x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
  return keras.layers.Dense(
      int(num_classes), kernel_initializer=constants.dense_initializer(),
      dtype="float32", name="logits")(x)


def arch_of(model: keras.Model) -> arch_lib.Arch:
  """Recovers the `Arch` of a model made by `build_model` (e.g. a reloaded one),
  one `r1` line per built block."""
  layers = [layer for layer in model.layers if isinstance(layer, MBConv)]
  if not layers:
    raise ValueError(f"model '{model.name}' has no MBConv blocks")
  stem = model.get_layer("stem_conv")
  head = model.get_layer("head_conv")
  return arch_lib.Arch(blocks=tuple(layer.spec for layer in layers), stem_stride=stem.strides[0],
                       stem_filters=stem.filters, head_filters=head.filters,
                       activation=layers[0].activation, nl_norm=layers[0].nl_norm)
