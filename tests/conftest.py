"""Test setup: quiet TensorFlow, fixed seeds, the repo root on sys.path."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
  try:
    import keras
  except ImportError:  # pure-Python tests
    yield
    return
  keras.utils.set_random_seed(1234)
  yield
