"""He et al.'s option-A residual shortcut (2016, section 4.2), for the
ResNet-20 anchor (`models.anchors`)."""

import keras

from autonl_tf.saving import KERAS_PACKAGE


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class ZeroPadShortcut(keras.layers.Layer):
  """He et al.'s option-A shortcut: the identity subsampled by `stride` and
  zero-padded to `filters` channels (half the new channels before, half
  after); no parameters, no MACs."""

  def __init__(self, filters, stride, **kwargs):
    super().__init__(**kwargs)
    self.filters, self.stride = int(filters), int(stride)

  def call(self, x):
    x = x[:, ::self.stride, ::self.stride, :]
    extra = self.filters - x.shape[-1]
    return keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])

  def compute_output_shape(self, input_shape):
    n, h, w, _ = input_shape
    out = lambda d: None if d is None else -(-d // self.stride)
    return (n, out(h), out(w), self.filters)

  def get_config(self):
    return dict(super().get_config(), filters=self.filters, stride=self.stride)
