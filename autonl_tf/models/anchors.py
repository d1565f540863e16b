"""Reference networks everybody knows, built so that they train through the
same pipeline and recipe as ours, and their MACs counted by the same
convention (`autonl_tf.flops`): `keras.applications` ones, named
`keras:<application>:<width multiplier>` (e.g. `keras:mobilenet_v2:0.5`),
and `resnet20`, He et al.'s CIFAR ResNet (2016, section 4.2), which no arch
string can express (its blocks are plain 3x3 convolutions). An anchor is
accepted wherever a training run takes an arch (`TrainConfig.arch`,
`tools/train.py --arch`). MobileNetV2 adapted to 32px is an arch preset
(`mobilenetv2-cifar`), not an anchor.
"""

import dataclasses
from typing import Tuple

import keras
import numpy as np

from autonl_tf import constants
from autonl_tf.layers.batch_norm import BatchNormalization
from autonl_tf.layers.zero_pad_shortcut import ZeroPadShortcut

PREFIX = "keras:"
#: application name -> keras.applications constructor name.
APPLICATIONS = {"mobilenet_v2": "MobileNetV2"}
#: The anchors built here, by name: (stage filters, blocks per stage).
RESNETS = {"resnet20": ((16, 32, 64), 3)}


@dataclasses.dataclass(frozen=True)
class Anchor:
  application: str
  alpha: float = 1.0

  @property
  def name(self) -> str:
    if self.application in RESNETS:
      return self.application
    return f"{PREFIX}{self.application}:{self.alpha:g}"


def is_anchor(arch) -> bool:
  return isinstance(arch, str) and (arch.startswith(PREFIX) or arch in RESNETS)


def parse(name: str) -> Anchor:
  """`keras:mobilenet_v2:0.5` -> Anchor('mobilenet_v2', 0.5), `resnet20` ->
  Anchor('resnet20'); clear errors."""
  if name in RESNETS:
    return Anchor(name)
  parts = name[len(PREFIX):].split(":") if is_anchor(name) else []
  if len(parts) != 2 or parts[0] not in APPLICATIONS:
    raise ValueError(f"anchor '{name}' must be keras:<application>:<alpha> with an application "
                     f"of {', '.join(APPLICATIONS)} (e.g. keras:mobilenet_v2:0.5)")
  try:
    alpha = float(parts[1])
  except ValueError:
    alpha = -1.0
  if not 0 < alpha <= 8:
    raise ValueError(f"anchor '{name}': the width multiplier must be a number in (0, 8], "
                     f"got '{parts[1]}'")
  return Anchor(parts[0], alpha)


def build(arch, input_shape: Tuple[int, int, int], num_classes: int) -> keras.Model:
  """An anchor by name (`build_anchor`) or any other arch (`build_model`:
  a preset, a file, an `Arch`), with the default dropout and BN momentum."""
  if is_anchor(arch):
    return build_anchor(arch, input_shape, num_classes)
  from autonl_tf.models.network import build_model
  return build_model(arch, input_shape, num_classes)


def build_anchor(name: str, input_shape: Tuple[int, int, int], num_classes: int,
                 dropout_rate: float = constants.DROPOUT_RATE,
                 bn_momentum: float = constants.BN_MOMENTUM) -> keras.Model:
  """The application without its top (random weights), then global pooling,
  dropout and a dense classifier as in `build_model`; every BN is ours
  (`layers.BatchNormalization`: Keras' layer trained with the fused kernel)
  with `bn_momentum` (the recipe's), so that only the body differs from ours.

  Takes images normalised like ours (ImageNet mean/std), returns logits.
  """
  anchor = parse(name)
  inputs = keras.Input(shape=tuple(input_shape), name="images")
  if anchor.application in RESNETS:
    x = resnet_body(inputs, *RESNETS[anchor.application], bn_momentum)
  else:
    ctor = getattr(keras.applications, APPLICATIONS[anchor.application])
    body = ctor(input_shape=tuple(input_shape), alpha=anchor.alpha, include_top=False,
                weights=None, pooling="avg")

    def ours(layer):
      config = layer.get_config()
      if isinstance(layer, keras.layers.BatchNormalization):
        return BatchNormalization.from_config(dict(config, momentum=bn_momentum))
      return layer.__class__.from_config(config)

    x = keras.models.clone_model(body, clone_function=ours)(inputs)
  if dropout_rate > 0:
    x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
  outputs = keras.layers.Dense(int(num_classes), kernel_initializer=constants.dense_initializer(),
                               dtype="float32", name="logits")(x)
  return keras.Model(inputs, outputs, name=anchor.name.replace(":", "_"))


def resnet_body(x, filters, blocks, bn_momentum):
  """He et al. 2016, section 4.2: a 3x3 conv of `filters[0]`, then one stage
  per entry of `filters` of `blocks` basic blocks (3x3 conv, BN, ReLU, 3x3
  conv, BN, + shortcut, ReLU), stride 2 at the first block of every stage
  but the first, option-A shortcuts (`ZeroPadShortcut`: 0.27M parameters
  for ResNet-20), then global average pooling. He-normal initialisation."""
  def conv_bn(x, f, stride, name):
    x = keras.layers.Conv2D(f, 3, strides=stride, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_conv")(x)
    return BatchNormalization(momentum=bn_momentum, epsilon=1e-5, name=f"{name}_bn")(x)

  x = keras.layers.ReLU(name="stem_relu")(conv_bn(x, filters[0], 1, "stem"))
  for s, f in enumerate(filters):
    for b in range(blocks):
      stride = 2 if s > 0 and b == 0 else 1
      name = f"stage{s + 1}_block{b + 1}"
      y = keras.layers.ReLU(name=f"{name}_relu1")(conv_bn(x, f, stride, f"{name}_1"))
      y = conv_bn(y, f, 1, f"{name}_2")
      shortcut = x if (stride == 1 and x.shape[-1] == f) else ZeroPadShortcut(
          f, stride, name=f"{name}_shortcut")(x)
      x = keras.layers.ReLU(name=f"{name}_relu2")(keras.layers.Add(name=f"{name}_add")([y, shortcut]))
  return keras.layers.GlobalAveragePooling2D(name="pool")(x)


def keras_model_params(model: keras.Model) -> int:
  """Trainable parameters (BN's gamma and beta included, its moving
  statistics not)."""
  return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def keras_model_macs(model: keras.Model) -> int:
  """MACs of a model made of standard Keras layers, by the convention of
  `autonl_tf.flops`: conv `kh*kw*cin/groups*cout*Hout*Wout`, depthwise
  `kh*kw*C*multiplier*Hout*Wout`, dense `in*out`, global pool `H*W*C`; BN,
  activations, padding and adds 0. Nested models are counted through."""
  total = 0
  for layer in model._flatten_layers(include_self=False):
    if isinstance(layer, keras.Model):
      continue  # its layers are visited by the flattening
    if isinstance(layer, keras.layers.DepthwiseConv2D):
      _, ho, wo, cout = layer.output.shape
      kh, kw = layer.kernel_size
      total += kh * kw * cout * ho * wo
    elif isinstance(layer, keras.layers.Conv2D):
      cin = layer.input.shape[-1]
      _, ho, wo, cout = layer.output.shape
      kh, kw = layer.kernel_size
      total += kh * kw * (cin // layer.groups) * cout * ho * wo
    elif isinstance(layer, keras.layers.Dense):
      total += layer.input.shape[-1] * layer.units
    elif isinstance(layer, keras.layers.GlobalAveragePooling2D):
      _, h, w, c = layer.input.shape
      total += h * w * c
  return int(total)
