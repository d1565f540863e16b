"""Keras layers: LightNL, the conventional non-local block and MBConv parts."""

from autonl_tf.layers.lightnl import LightNL, NonLocal, lightnl_aggregate
from autonl_tf.layers.mbconv import (DropConnect, GroupedConv2D, MBConv,
                                     MixedDepthwiseConv2D, SqueezeExcite)

__all__ = ["LightNL", "NonLocal", "lightnl_aggregate", "DropConnect",
           "GroupedConv2D", "MBConv", "MixedDepthwiseConv2D", "SqueezeExcite"]
