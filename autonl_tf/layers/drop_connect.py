"""Drop-connect (stochastic depth) of a residual branch, as MnasNet does it."""

import keras
import tensorflow as tf

from autonl_tf.saving import KERAS_PACKAGE

@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class DropConnect(keras.layers.Layer):
  """Per-example drop of a residual branch (MnasNet's `drop_connect`).

  In training each example's branch is kept with probability `1 - rate` and
  divided by `1 - rate`; at inference it passes unchanged. (keras-cv's
  `StochasticDepth` scales at inference instead, which changes exported
  weights' meaning, so the MnasNet form is kept.)

  Args:
    rate: drop probability in [0, 1).
    seed: seed of the drop mask (None: Keras' global seed, or random).
    **kwargs: base layer arguments.

  Call arguments:
    inputs: any tensor, examples along the first axis.
    training: drop (True) or pass unchanged (False / None).
  """

  def __init__(self, rate=0.0, seed=None, **kwargs):
    super().__init__(**kwargs)
    if not 0 <= rate < 1:
      raise ValueError(f"drop-connect rate must be in [0, 1), got {rate}")
    self.rate = float(rate)
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, inputs, training=None):
    if not training or self.rate == 0:
      return inputs
    keep = 1.0 - self.rate
    shape = [tf.shape(inputs)[0]] + [1] * (inputs.shape.rank - 1)
    mask = keras.random.uniform(shape, seed=self.seed_generator, dtype=inputs.dtype)
    return inputs * tf.floor(keep + mask) / tf.cast(keep, inputs.dtype)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(rate=self.rate, seed=self.seed)
    return config
