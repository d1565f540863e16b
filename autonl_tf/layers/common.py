"""Helpers shared by the layers: static shapes, convolutions per channel group."""

import tensorflow as tf

from autonl_tf import flops


def static_hwc(input_shape, layer_name):
  """(H, W, C) of a 4-D `[N, H, W, C]` shape; a `ValueError` naming
  `layer_name` when the rank is wrong or H, W or C is unknown."""
  if len(input_shape) != 4:
    raise ValueError(f"{layer_name} expects a 4-D [N, H, W, C] input, got shape {tuple(input_shape)}")
  h, w, c = input_shape[1:]
  if h is None or w is None or c is None:
    raise ValueError(f"{layer_name} needs static H, W and C (the product order and the "
                     f"1/(H*W) scale depend on them), got shape {tuple(input_shape)}")
  return int(h), int(w), int(c)


def convs_per_group(convs, inputs):
  """Each of `convs` on its group of `inputs`' channels, concatenated; the
  groups as MixNet splits them (`flops.split_channels`: `C // G` channels
  each, the remainder to the first). One conv takes all of `inputs`."""
  if len(convs) == 1:
    return convs[0](inputs)
  parts = tf.split(inputs, flops.split_channels(inputs.shape[-1], len(convs)), axis=-1)
  return tf.concat([conv(p) for conv, p in zip(convs, parts)], axis=-1)
