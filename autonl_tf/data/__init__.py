"""Input pipelines and preprocessing.

The names below are imported on first use (PEP 562), so that `DataConfig`
(pure Python) comes without the TensorFlow pipelines behind the others.
"""

from autonl_tf import lazy as _lazy

__all__, __getattr__, __dir__ = _lazy.exports(__name__, {
    "config": ("DataConfig", "DataError"),
    "datasets": ("FOLDER_PREFIX", "SPLITS", "SYNTHETIC", "DatasetInfo", "dataset_info",
                 "distributed_dataset", "import_tfds", "is_prepared", "make_dataset"),
})
