"""The network-wide activations (`arch.ACTIVATIONS`, on an arch file's `#!`
line): `swish` (x * sigmoid(x), the paper's), `hard_swish` (x * relu6(x + 3)
/ 6, MobileNetV3's piecewise-linear swish) and `relu6` (MobileNetV2's), as
functions of a tensor for layers' `call` and as Keras layers for the
functional stem and head. LiteRT has builtin kernels for all three
(HARD_SWISH; RELU6 fuses into the convolution before it)."""

import keras
import tensorflow as tf

from autonl_tf.arch import check_activation as check


# Keras' names of the same functions (its `hard_silu` is x * relu6(x + 3) / 6).
_KERAS = {"swish": "swish", "hard_swish": "hard_silu", "relu6": "relu6"}
# What layers call: swish as tf.nn.silu (what the blocks always called), the
# others as Keras defines them, so the functional stem / head and the blocks
# compute the same function.
_FUNCTIONS = {"swish": tf.nn.silu, "hard_swish": keras.activations.hard_silu,
              "relu6": keras.activations.relu6}


def get(name: str):
  """The activation `name` as a function of a tensor."""
  return _FUNCTIONS[check(name)]


def layer(name: str, layer_name: str) -> keras.layers.Layer:
  """The activation `name` as a Keras `Activation` layer called `layer_name`."""
  return keras.layers.Activation(_KERAS[check(name)], name=layer_name)
