"""Makes `autonl_tf` and `flags` importable when a tool runs as a script."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_logs():
  """Keeps TensorFlow / TFDS INFO chatter out of the tools' output."""
  from absl import logging
  logging.set_verbosity(logging.WARNING)
