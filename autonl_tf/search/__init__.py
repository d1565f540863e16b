"""The AutoNL search: spaces, the supernet with learnable masks, derivation."""

from autonl_tf.search.derive import copy_child_weights, write_derived
from autonl_tf.search.model import SuperNet
from autonl_tf.search.space import SPACES, SearchSpace, Stage, get_space
from autonl_tf.search.supernet import SuperMBConv

__all__ = ["copy_child_weights", "write_derived", "SuperNet", "SPACES", "SearchSpace", "Stage",
           "get_space", "SuperMBConv"]
