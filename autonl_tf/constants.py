"""The paper's numbers, in one place (arXiv 2004.01961, section 5, "Experiments",
which takes MnasNet's settings).

Sources: MnasNet (Tan et al. 2019) / the official AutoNL `model_def.py`:
BN momentum 0.99 and epsilon 1e-3; conv kernels ~ normal(0, sqrt(2/fan_out));
ImageNet mean/std in 0-255 units. Two initialisations differ from MnasNet's
(see `dense_initializer` and `layers.MBConv`'s `zero_init_residual`): with
MnasNet's, a 10-class network starts far above chance and its early layers
get gradients 50x their weights' norm.

Also the names the library's strategies and precisions go by
(`distribute`), so that the tools' flags offer them without importing
TensorFlow.

Pure Python: Keras is imported inside the functions that build its objects.
"""

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
#: Added to the mean square that LightNL's `second_moment` product divides by.
NL_NORM_EPSILON = 1e-3
#: ImageNet at the paper's resolution: the default input of whatever takes one.
INPUT_SIZE = 224
NUM_CLASSES = 1000
STEM_FILTERS = 32
HEAD_FILTERS = 1280
DROPOUT_RATE = 0.2

MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
EVAL_CROP_PADDING = 32  # centre crop of size/(size+32) of the short side

#: `distribute.make_strategy`'s strategies and `distribute.precision`'s policies.
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def conv_initializer():
  """normal(0, sqrt(2 / fan_out)), fan_out = kh*kw*out (untruncated)."""
  import keras
  return keras.initializers.VarianceScaling(
      scale=2.0, mode="fan_out", distribution="untruncated_normal")


def dense_initializer():
  """uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).

  MnasNet draws from +-1/sqrt(units) (the classes), sized for 1000 classes:
  with a 1280-wide head that is +-0.032, and +-1/sqrt(fan_in) is +-0.028. With
  10 classes MnasNet's range is +-0.32: the untrained network's logits have a
  standard deviation of about 3 and its cross-entropy is 3.9 (chance: 2.3);
  with fan_in the logits start near 0 whatever the number of classes.
  """
  import keras
  return keras.initializers.VarianceScaling(
      scale=1.0 / 3.0, mode="fan_in", distribution="uniform")

