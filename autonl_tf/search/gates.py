"""Hard 0/1 gates with straight-through sigmoid gradients (Single-Path NAS).

Forward `g = 1[v > t]`; backward `dg/dv = sigmoid'(v - t)` and
`dg/dt = -sigmoid'(v - t)`.
"""

import tensorflow as tf


@tf.custom_gradient
def _indicator(x):
  hard = tf.cast(x > 0, x.dtype)

  def grad(upstream):
    s = tf.sigmoid(x)
    return upstream * s * (1 - s)

  return hard, grad


def indicator(value, threshold):
  """`1[value > threshold]` with the sigmoid straight-through gradient."""
  return _indicator(value - threshold)


def force(gate, forced):
  """Overrides a gate with a fixed 0/1 (`forced` in {0, 1}) or keeps it (-1),
  keeping the gradient path: `g + stop_gradient(f - g)` when forced."""
  forced = tf.cast(forced, gate.dtype)
  return tf.where(forced < 0, gate, gate + tf.stop_gradient(forced - gate))
