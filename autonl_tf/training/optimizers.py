"""The recipes' optimizers: RMSProp as TensorFlow 1 (and so MnasNet,
Single-Path NAS and AutoNL) ran it, and SGD with (Nesterov) momentum."""

import keras

from autonl_tf.saving import KERAS_PACKAGE
from autonl_tf.training.config import OPTIMIZERS  # noqa: F401  (the names `make` takes)


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class RMSpropTF(keras.optimizers.RMSprop):
  """Keras RMSprop whose mean-square accumulators start at 1, as TF1's
  `tf.train.RMSPropOptimizer` did.

  Keras starts them at 0, so the first steps divide by `sqrt(0.1 g^2 + eps)`
  and are up to ~3x the learning rate per unit gradient; the paper's recipe
  (lr 0.016 per 256 images, epsilon 1e-3) was tuned with accumulators at 1
  and diverges in its first epoch without them. (timm ships `RMSpropTF` for
  the same reason.) The update itself is Keras' (epsilon inside the square
  root, as TF1).
  """

  def build(self, var_list):
    if self.built:
      return
    # Keras' RMSprop.build with "ones" for the velocities. Created with their
    # initial value rather than assigned after creation: under a
    # tf.distribute strategy an assignment at build time can reach only some
    # replicas' copies.
    keras.optimizers.Optimizer.build(self, var_list)
    self._velocities = self.add_optimizer_variables(var_list, "velocity", initializer="ones")
    self._momentums = []
    if self.momentum > 0:
      self._momentums = self.add_optimizer_variables(var_list, "momentum")
    self._average_gradients = []
    if self.centered:
      self._average_gradients = self.add_optimizer_variables(var_list, "average_gradient")


def make(name, learning_rate, momentum=0.9, nesterov=False, rho=0.9, epsilon=1e-3,
         ema_momentum=0.0):
  """`rmsprop` (`RMSpropTF`: rho, momentum, epsilon), `sgd` (Keras SGD:
  momentum, nesterov) or `adam` (Keras Adam, its own defaults); weight EMA
  when `ema_momentum > 0`."""
  ema = dict(use_ema=ema_momentum > 0, ema_momentum=ema_momentum or 0.99)
  if name == "rmsprop":
    return RMSpropTF(learning_rate=learning_rate, rho=rho, momentum=momentum, epsilon=epsilon,
                     **ema)
  if name == "sgd":
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum,
                                nesterov=nesterov, **ema)
  if name == "adam":
    return keras.optimizers.Adam(learning_rate=learning_rate, **ema)
  raise ValueError(f"unknown optimizer '{name}' (one of {', '.join(OPTIMIZERS)})")
