"""The paper's numbers, in one place (DESIGN.md sections 2 and 4).

Sources: MnasNet (Tan et al. 2019) / the official AutoNL `model_def.py`:
BN momentum 0.99 and epsilon 1e-3; conv kernels ~ normal(0, sqrt(2/fan_out));
dense kernels ~ uniform(+-1/sqrt(units)); ImageNet mean/std in 0-255 units.
"""

import keras

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
STEM_FILTERS = 32
HEAD_FILTERS = 1280
DROPOUT_RATE = 0.2

MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
EVAL_CROP_PADDING = 32  # centre crop of size/(size+32) of the short side


def conv_initializer():
  """normal(0, sqrt(2 / fan_out)), fan_out = kh*kw*out (untruncated)."""
  return keras.initializers.VarianceScaling(
      scale=2.0, mode="fan_out", distribution="untruncated_normal")


def dense_initializer():
  """uniform(-1/sqrt(units), 1/sqrt(units))."""
  return keras.initializers.VarianceScaling(
      scale=1.0 / 3.0, mode="fan_out", distribution="uniform")


def batch_norm(name, gamma_initializer="ones", momentum=BN_MOMENTUM,
               epsilon=BN_EPSILON, synchronized=False):
  """BN with the paper's settings; `synchronized` computes batch statistics
  over all replicas of a tf.distribute strategy."""
  return keras.layers.BatchNormalization(
      momentum=momentum, epsilon=epsilon, gamma_initializer=gamma_initializer,
      synchronized=synchronized, name=name)
