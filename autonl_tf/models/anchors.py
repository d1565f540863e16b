"""Reference networks everybody knows (`keras.applications`), built so that
they train through the same pipeline and recipe as ours, and their MACs
counted by the same convention (`autonl_tf.flops`).

An anchor is named `keras:<application>:<width multiplier>`, e.g.
`keras:mobilenet_v2:0.5`, and is accepted wherever a training run takes an
arch (`TrainConfig.arch`, `tools/train.py --arch`).
"""

import dataclasses
from typing import Tuple

import keras

from autonl_tf import constants
from autonl_tf.layers.batch_norm import BatchNormalization

PREFIX = "keras:"
#: application name -> keras.applications constructor name.
APPLICATIONS = {"mobilenet_v2": "MobileNetV2"}


@dataclasses.dataclass(frozen=True)
class Anchor:
  application: str
  alpha: float

  @property
  def name(self) -> str:
    return f"{PREFIX}{self.application}:{self.alpha:g}"


def is_anchor(arch) -> bool:
  return isinstance(arch, str) and arch.startswith(PREFIX)


def parse(name: str) -> Anchor:
  """`keras:mobilenet_v2:0.5` -> Anchor('mobilenet_v2', 0.5); clear errors."""
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
  ctor = getattr(keras.applications, APPLICATIONS[anchor.application])
  body = ctor(input_shape=tuple(input_shape), alpha=anchor.alpha, include_top=False,
              weights=None, pooling="avg")
  def ours(layer):
    config = layer.get_config()
    if isinstance(layer, keras.layers.BatchNormalization):
      return BatchNormalization.from_config(dict(config, momentum=bn_momentum))
    return layer.__class__.from_config(config)

  body = keras.models.clone_model(body, clone_function=ours)
  inputs = keras.Input(shape=tuple(input_shape), name="images")
  x = body(inputs)
  if dropout_rate > 0:
    x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
  outputs = keras.layers.Dense(int(num_classes), kernel_initializer=constants.dense_initializer(),
                               dtype="float32", name="logits")(x)
  return keras.Model(inputs, outputs, name=anchor.name.replace(":", "_"))


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
