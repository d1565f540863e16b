"""Input pipelines and preprocessing."""

from autonl_tf.data.datasets import (FOLDER_PREFIX, SPLITS, SYNTHETIC, DataConfig, DataError,
                                     DatasetInfo, dataset_info, distributed_dataset, import_tfds,
                                     is_prepared, make_dataset)

__all__ = ["FOLDER_PREFIX", "SPLITS", "SYNTHETIC", "DataConfig", "DataError", "DatasetInfo",
           "dataset_info", "distributed_dataset", "import_tfds", "is_prepared", "make_dataset"]
