"""Test setup: quiet TensorFlow, fixed seeds, two logical CPUs.

The tests import the checkout's `autonl_tf` through pytest.ini's
`pythonpath = .` (or the installed package).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

try:  # two logical CPU devices for the tf.distribute tests; must precede any TF op
  import tensorflow as tf
  _cpus = tf.config.list_physical_devices("CPU")
  tf.config.set_logical_device_configuration(
      _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
except ImportError:
  pass


#: The slowest test files (seconds on 2 cores, whole file, from `pytest
#: --durations=0`), handed to the two xdist workers first so that neither is
#: left with a long file at the end (longest-first; pytest.ini turns off
#: xdist's own order, most tests first). The rest follow in name order.
SLOW_FILES = {
    "test_search_vs_random.py": 210,
    "test_search_vs_random_deep.py": 115,
    "test_search_planted.py": 120,
    "test_reference_table.py": 113,
    "test_training.py": 113,
    "test_export.py": 109,
    "test_resume.py": 106,
    "test_latency_vs_macs.py": 95,
    "test_search.py": 93,
    "test_distribute.py": 86,
    "test_search_tool.py": 86,
    "test_search_objective.py": 76,
    "test_search_latency.py": 50,
    "test_learning.py": 46,
    "test_pipeline.py": 43,
    "test_hostile_inputs.py": 43,
    "test_reference_anchors.py": 37,
    "test_prepare_data.py": 36,
}


#: Files handed out after all others: their timings need both cores idle, and
#: their tests wait until the other worker has finished its last file.
LAST_FILES = {"test_latency_two_threads.py"}


def pytest_collection_modifyitems(items):
  items.sort(key=lambda item: (item.path.name in LAST_FILES,  # stable: in-file order kept
                               -SLOW_FILES.get(item.path.name, 0)))


@pytest.fixture(autouse=True)
def _seed():
  try:
    import keras
  except ImportError:  # pure-Python tests
    yield
    return
  import layer_testing
  keras.utils.set_random_seed(1234)
  layer_testing.reset_rng()
  yield


#: Two MBConv blocks, the second with SE and LightNL, for 8x8 inputs.
TINY_ARCH = "#! stem_stride=1 head_filters=32\nr1_k3_s11_e1_i8_o8\nr1_k3_s22_e3_i8_o16_se0.25_nonlocal0.5\n"


@pytest.fixture
def tiny_arch(tmp_path):
  path = tmp_path / "tiny.txt"
  path.write_text(TINY_ARCH)
  return str(path)


@pytest.fixture(scope="session")
def mirrored():
  """One MirroredStrategy over the two logical CPUs for the whole session:
  strategies created one after another in a process reuse collective
  instance keys, and sync-BN collectives of a second one then clash with the
  first's ("shape mismatch in the collective instance")."""
  return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
