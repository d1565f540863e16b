"""Start-up of the scripts in `tools/`: quiet TensorFlow, user errors as one line.

`python tools/<name>.py` puts `tools/` on `sys.path`, not the checkout's root,
and the tools' absl flag definitions live in the root's `flags/` package,
which is not part of the installed `autonl_tf` (a top-level package named
`flags` has no place in site-packages). So this one place puts the root in
front of `sys.path`: that is all it is for. `autonl_tf` itself is installed
(`pip install -r requirements.txt` installs it editable); with the root first
the tools use the checkout's copy, the one that matches them.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # for `flags/` (see above)
  sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_logs():
  """Keeps TensorFlow / TFDS INFO chatter out of the tools' output."""
  from absl import logging
  logging.set_verbosity(logging.WARNING)


def run(job):
  """Runs `job()` and returns its exit code; errors a user can fix (bad
  flags, data, files, a diverged run) print `error: ...` and exit with 2
  (with the traceback too when AUTONL_TRACEBACK is set)."""
  from autonl_tf.training.callbacks import LossIsNaN
  if os.environ.get("AUTONL_TRACEBACK"):
    import keras
    keras.config.disable_traceback_filtering()
  try:
    return job() or 0
  except (ValueError, OSError, LossIsNaN) as e:
    if os.environ.get("AUTONL_TRACEBACK"):
      import traceback
      traceback.print_exc()
    print(f"error: {e}", file=sys.stderr)
    return 2
