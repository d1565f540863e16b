"""The AutoNL search, one concept per module:

* `space`: declarative search spaces;
* `sampling`: uniform random architectures of a space (at a MAC budget);
* `gates`: hard 0/1 gates with straight-through gradients;
* `blocks`: `SuperMBConv`, the searchable block;
* `supernet`: `SuperNet`, the `keras.Model` and its NAS `train_step`;
* `cost`: the MACs as a function of the gates, and the cost term of the loss;
* `derive`: from gates to an `Arch`, the landing, `arch.txt`, child weights;
* `callbacks`: warm-up / search switch, landing log, per-epoch and per-step logs;
* `runner`: `SearchConfig` (every default) and `search()`.

`space` and `sampling` are pure Python; the names below are imported when
first used (as in the `autonl_tf` package), so that importing those two does
not load TensorFlow.
"""

_LAZY = {"SuperMBConv": "autonl_tf.search.blocks",
         "copy_child_weights": "autonl_tf.search.derive",
         "derive_arch": "autonl_tf.search.derive",
         "write_derived": "autonl_tf.search.derive",
         "SPACES": "autonl_tf.search.space",
         "SearchSpace": "autonl_tf.search.space",
         "Stage": "autonl_tf.search.space",
         "get_space": "autonl_tf.search.space",
         "SuperNet": "autonl_tf.search.supernet"}

__all__ = sorted(_LAZY)


def __getattr__(name):
  if name in _LAZY:
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'autonl_tf.search' has no attribute '{name}'")
