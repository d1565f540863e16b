"""Test setup: quiet TensorFlow, fixed seeds, the repo root on sys.path."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import pytest  # noqa: E402

try:  # two logical CPU devices for the tf.distribute tests; must precede any TF op
  import tensorflow as tf
  _cpus = tf.config.list_physical_devices("CPU")
  tf.config.set_logical_device_configuration(
      _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
except ImportError:
  pass


@pytest.fixture(autouse=True)
def _seed():
  try:
    import keras
  except ImportError:  # pure-Python tests
    yield
    return
  keras.utils.set_random_seed(1234)
  yield
