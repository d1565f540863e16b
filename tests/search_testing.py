"""Supernets for tests, built like `tools/search.py` builds them: from a
`SearchConfig` (the search's only defaults), overriding some fields."""

from autonl_tf.data import DataConfig
from autonl_tf.search.runner import SearchConfig, make_supernet


def make_net(space, size, classes, **fields):
  """The uncompiled supernet of `space` (a name or a `SearchSpace`) at
  `size` px with `classes` classes and `SearchConfig` defaults but `fields`."""
  config = SearchConfig(space=space, data=DataConfig("synthetic", image_size=size,
                                                     num_classes=classes),
                        model_dir="", **fields)
  return make_supernet(config, classes)


def random_latency_table(space, size, classes, seed=7, path=None):
  """A `LatencyTable` of every piece of `space` at `size` px with
  `classes` classes, each entry a distinct random ms (so a wrong option or a
  doubly counted gate shows), the overhead 0.01 ms; saved at `path` when
  given, with the settings a search checks."""
  import numpy as np
  from autonl_tf import latency
  rng = np.random.default_rng(seed)
  pieces = latency.space_pieces(space, size, classes)
  table = latency.LatencyTable({p.key: {"ms": float(v)} for p, v in
                                zip(pieces, rng.uniform(0.1, 1.0, len(pieces)))},
                               {"input_size": size, "num_classes": classes})
  table.entries[latency.OVERHEAD] = {"ms": 0.01}
  if path:
    table.save(str(path))
  return table
