"""The AutoNL search, one concept per module:

* `space`: declarative search spaces;
* `gates`: hard 0/1 gates with straight-through gradients;
* `blocks`: `SuperMBConv`, the searchable block;
* `supernet`: `SuperNet`, the `keras.Model` and its NAS `train_step`;
* `cost`: the MACs as a function of the gates, and the cost term of the loss;
* `derive`: from gates to an `Arch`, the landing, `arch.txt`, child weights;
* `callbacks`: warm-up / search switch, landing log, per-epoch and per-step logs;
* `runner`: `SearchConfig` (every default) and `search()`.
"""

from autonl_tf.search.blocks import SuperMBConv
from autonl_tf.search.derive import copy_child_weights, derive_arch, write_derived
from autonl_tf.search.space import SPACES, SearchSpace, Stage, get_space
from autonl_tf.search.supernet import SuperNet

__all__ = ["copy_child_weights", "derive_arch", "write_derived", "SuperNet", "SPACES",
           "SearchSpace", "Stage", "get_space", "SuperMBConv"]
