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
