"""autonl-tf: AutoNL (Li et al., "Neural Architecture Search for Lightweight
Non-Local Networks", CVPR 2020, arXiv 2004.01961) in TensorFlow 2 / Keras 3.

`autonl_tf.arch`, `autonl_tf.flops` and `autonl_tf.viz` are pure Python;
everything that needs TensorFlow is imported lazily, so that counting MACs
stays fast. Importing the package registers its Keras classes (layers, loss,
schedules, optimizer) the first time Keras is imported, so that
`keras.models.load_model` opens the `.keras` files it saves; `keras_objects()`
returns them (see `autonl_tf.saving`).
"""

__version__ = "0.1.0"

from autonl_tf import lazy as _lazy  # noqa: E402  (pure Python)
from autonl_tf import saving as _saving  # noqa: E402  (pure Python)

_, __getattr__, __dir__ = _lazy.exports(__name__, {"models.network": ["build_model"],
                                                   "saving": ["keras_objects"]})

_saving.register_on_keras_import()
