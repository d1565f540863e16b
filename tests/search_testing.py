"""Supernets for tests, built like `tools/search.py` builds them: from a
`SearchConfig` (the search's only defaults), overriding some fields; random
weights for them; random latency tables of their spaces."""

import numpy as np

from autonl_tf.data import DataConfig
from autonl_tf.search.runner import SearchConfig, make_supernet


def make_net(space, size, classes, **fields):
  """The uncompiled supernet of `space` (a name or a `SearchSpace`) at
  `size` px with `classes` classes and `SearchConfig` defaults but `fields`."""
  config = SearchConfig(space=space, data=DataConfig("synthetic", input_size=size,
                                                     num_classes=classes),
                        model_dir="", **fields)
  return make_supernet(config, classes)


def randomize(net, seed=1):
  """Random weights and BN statistics for a supernet (its architecture
  variables and search state untouched)."""
  rng = np.random.default_rng(seed)
  for w in net.weights:
    if not w.trainable and "moving" not in w.path:
      continue
    if "arch_" in w.path:
      continue
    values = rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else rng.normal(0, 0.3, w.shape)
    w.assign(values.astype("float32"))


def random_latency_table(space, size, classes, seed=7, path=None):
  """A `LatencyTable` of every piece of `space` at `size` px with
  `classes` classes, each entry a distinct random ms (so a wrong option or a
  doubly counted gate shows), the overhead 0.01 ms, calibrated with scale
  1.1; saved at `path` when given, with the settings a search checks."""
  from autonl_tf import latency
  from autonl_tf.search import pieces as search_pieces
  rng = np.random.default_rng(seed)
  pieces = search_pieces.space_pieces(space, size, classes)
  table = latency.LatencyTable({p.key: {"ms": float(v)} for p, v in
                                zip(pieces, rng.uniform(0.1, 1.0, len(pieces)))},
                               {"input_size": size, "num_classes": classes,
                                "statistic": latency.STATISTIC}, {"scale": 1.1})
  table.entries[latency.OVERHEAD] = {"ms": 0.01}
  if path:
    table.save(str(path))
  return table
