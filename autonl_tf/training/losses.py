"""Loss and weight decay of the training recipe."""

import keras
import tensorflow as tf

from autonl_tf.saving import KERAS_PACKAGE


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class SparseLabelSmoothingCrossEntropy(keras.losses.Loss):
  """Cross-entropy of logits against integer labels with label smoothing:
  the target is `(1 - eps) * onehot + eps / num_classes`.

  (Keras' SparseCategoricalCrossentropy has no label smoothing; keeping the
  labels as integers keeps the pipelines and sparse metrics simple.)

  Args:
    label_smoothing: eps in [0, 1).
  """

  def __init__(self, label_smoothing=0.0, name="sparse_ls_ce", **kwargs):
    super().__init__(name=name, **kwargs)
    self.label_smoothing = float(label_smoothing)

  def call(self, y_true, y_pred):
    num_classes = tf.shape(y_pred)[-1]
    labels = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), num_classes,
                        dtype=y_pred.dtype)
    return keras.losses.categorical_crossentropy(
        labels, y_pred, from_logits=True, label_smoothing=self.label_smoothing)

  def get_config(self):
    config = super().get_config()
    config.update(label_smoothing=self.label_smoothing)
    return config


def decayed_variables(model):
  """Kernels of conv, depthwise and dense layers, and the `decayed_weights`
  of layers that own kernels themselves (the supernet's superkernel):
  everything weight decay applies to. BN gamma/beta and biases are left out."""
  out = []
  for layer in model._flatten_layers(include_self=False):
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
      out.append(layer.kernel)
    out.extend(getattr(layer, "decayed_weights", ()))
  return out


def apply_weight_decay(model, weight_decay):
  """Adds the L2 penalty `weight_decay * sum(w^2) / 2` (TF's `l2_loss`, as
  MnasNet) of every decayed kernel to `model.losses`.

  Regularizers are attached to the variables, so they take part in
  `model.fit`'s loss without changing the saved architecture.
  """
  variables = decayed_variables(model)
  regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay > 0 else None
  for v in variables:
    v.regularizer = regularizer
  return variables
