"""Learning-rate schedules of the MnasNet / AutoNL recipe (arXiv 2004.01961,
section 5, "Experiments"; MnasNet, arXiv 1807.11626, section 5)."""

import keras
import tensorflow as tf

from autonl_tf.saving import KERAS_PACKAGE


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up to `peak`, then `peak * rate ** floor(step / decay_steps)`.

  MnasNet: peak = 0.016 per 256 images, rate 0.97 every 2.4 epochs, 5 warm-up
  epochs. The staircase counts from step 0, as in MnasNet's TPU code.

  Args:
    peak: learning rate at the end of the warm-up.
    warmup_steps: steps of linear warm-up from 0.
    decay_steps: steps between decays.
    decay_rate: multiplicative decay.
  """

  def __init__(self, peak, warmup_steps, decay_steps, decay_rate):
    self.peak = float(peak)
    self.warmup_steps = int(warmup_steps)
    self.decay_steps = float(decay_steps)
    self.decay_rate = float(decay_rate)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    decayed = self.peak * tf.pow(self.decay_rate, tf.floor(step / self.decay_steps))
    if self.warmup_steps <= 0:
      return decayed
    warm = self.peak * step / self.warmup_steps
    return tf.where(step < self.warmup_steps, warm, decayed)

  def get_config(self):
    return {"peak": self.peak, "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps, "decay_rate": self.decay_rate}


def learning_rate_schedule(kind, base_lr_per_256, global_batch_size, steps_per_epoch,
                           epochs, lr_warmup_epochs, decay_rate=0.97, decay_epochs=2.4):
  """Builds the schedule: `exponential` (the paper's) or `cosine` (Keras'
  CosineDecay with its own linear warm-up)."""
  peak = base_lr_per_256 * global_batch_size / 256.0
  warmup = int(round(lr_warmup_epochs * steps_per_epoch))
  if kind == "exponential":
    return WarmupExponentialDecay(peak, warmup, decay_epochs * steps_per_epoch, decay_rate)
  if kind == "cosine":
    total = max(1, int(epochs * steps_per_epoch) - warmup)
    if warmup == 0:
      return keras.optimizers.schedules.CosineDecay(peak, total)
    return keras.optimizers.schedules.CosineDecay(0.0, total, warmup_target=peak,
                                                  warmup_steps=warmup)
  raise ValueError(f"unknown learning-rate schedule '{kind}' (exponential or cosine)")
