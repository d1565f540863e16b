"""Keras layers, one public class per module: LightNL, the conventional
non-local block, and MBConv with its parts (mixed depthwise conv, grouped
conv, squeeze-excitation, drop-connect), and the two Keras layers these are
built from with a faster training path on CPUs (batch norm, depthwise conv),
and ResNet-20's option-A shortcut (the reference anchor's)."""

from autonl_tf.layers.batch_norm import BatchNormalization
from autonl_tf.layers.depthwise import DepthwiseConv2D
from autonl_tf.layers.drop_connect import DropConnect
from autonl_tf.layers.grouped_conv import GroupedConv2D
from autonl_tf.layers.lightnl import LightNL, lightnl_aggregate
from autonl_tf.layers.mbconv import MBConv
from autonl_tf.layers.mixed_depthwise import MixedDepthwiseConv2D
from autonl_tf.layers.non_local import NonLocal
from autonl_tf.layers.squeeze_excite import SqueezeExcite
from autonl_tf.layers.zero_pad_shortcut import ZeroPadShortcut

__all__ = ["LightNL", "NonLocal", "lightnl_aggregate", "BatchNormalization", "DepthwiseConv2D",
           "DropConnect", "GroupedConv2D", "MBConv", "MixedDepthwiseConv2D", "SqueezeExcite",
           "ZeroPadShortcut"]
