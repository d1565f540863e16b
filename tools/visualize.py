"""Draws an architecture (arch.png) and a search's trajectory (search.png).

  python tools/visualize.py --search_dir=runs/search_c10
  python tools/visualize.py --arch=autonl-l --out_dir=/tmp/pics
  python tools/visualize.py --arch=path/to/arch.txt --input_size=32 --num_classes=10 --out_dir=.

With --search_dir, reads DIR/search_log.csv (-> search.png) and DIR/arch.txt
(-> arch.png; --arch overrides it); the input size and classes default to
the search's own (decisions.json, search_config.json). While a search is
still running there is no arch.txt yet: only search.png is written.
Pure Python + matplotlib: no TensorFlow is imported.
"""

import os
import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from autonl_tf import constants
from autonl_tf import io
from autonl_tf import run_files
from autonl_tf import viz
from autonl_tf.arch import presets

flags.DEFINE_string("search_dir", None,
                    f"Model directory of tools/search.py ({run_files.SEARCH_LOG}, {run_files.ARCH}).")
flags.DEFINE_string("arch", None,
                    "Architecture to draw: a preset (autonl-s, autonl-l, mobilenet-v2) or an arch "
                    f"file path (default with --search_dir: DIR/{run_files.ARCH}).")
flags.DEFINE_integer("input_size", None,
                     "Input image height and width (default: the search's, else 224).")
flags.DEFINE_integer("num_classes", None,
                     "Classifier width for the MAC count (default: the search's, else 1000).")
flags.DEFINE_string("out_dir", None,
                    f"Where to write {run_files.ARCH_PICTURE} / {run_files.SEARCH_PICTURE} (default: "
                    "--search_dir, else the "
                    "current directory).")
FLAGS = flags.FLAGS


def _read_json(path):
  try:
    out = io.read_json(path)
    return out if isinstance(out, dict) else {}
  except (OSError, ValueError):
    return {}


def _search_defaults(search_dir):
  """(input_size, num_classes) the search ran with, None where unknown."""
  decisions = _read_json(os.path.join(search_dir, run_files.DECISIONS))
  config = run_files.saved_fields(run_files.SEARCH_CONFIG,
                                  _read_json(os.path.join(search_dir, run_files.SEARCH_CONFIG)))
  size = decisions.get("input_size") or (config.get("data") or {}).get("input_size")
  classes = decisions.get("num_classes") or (config.get("data") or {}).get("num_classes")
  return size, classes


def _describe(path):
  w, h = viz.png_size(path)
  return f"wrote {path} ({w}x{h} px, {os.path.getsize(path) / 1024:.1f} KB)"


def main(argv):
  del argv
  written, notes = [], []
  try:
    search_dir = FLAGS.search_dir
    if not search_dir and not FLAGS.arch:
      raise ValueError("nothing to draw: give --search_dir and/or --arch")
    size, classes = None, None
    log_path = arch = None
    if search_dir:
      if not os.path.isdir(search_dir):
        raise ValueError(f"search dir '{search_dir}' does not exist or is not a directory")
      size, classes = _search_defaults(search_dir)
      log_path = os.path.join(search_dir, viz.LOG_FILE)
      if not os.path.exists(log_path):
        log_path = None
      arch = FLAGS.arch
      if not arch and os.path.exists(os.path.join(search_dir, run_files.ARCH)):
        arch = os.path.join(search_dir, run_files.ARCH)
      if log_path is None and arch is None:
        raise ValueError(f"'{search_dir}' has neither {viz.LOG_FILE} nor {run_files.ARCH} "
                         "(is it a model dir of tools/search.py?)")
      if log_path is None:
        notes.append(f"note: no {viz.LOG_FILE} in {search_dir}; skipped "
                     f"{run_files.SEARCH_PICTURE}")
      if arch is None:
        notes.append(f"note: no {run_files.ARCH} in {search_dir} (the search has not "
                     f"finished); skipped {run_files.ARCH_PICTURE}")
    else:
      arch = FLAGS.arch
    if FLAGS.input_size is not None:
      size = FLAGS.input_size
    if FLAGS.num_classes is not None:
      classes = FLAGS.num_classes
    size, classes = size or constants.INPUT_SIZE, classes or constants.NUM_CLASSES
    if size < 1 or classes < 1:
      raise ValueError("--input_size and --num_classes must be positive")
    out_dir = FLAGS.out_dir or search_dir or "."
    log = viz.read_search_log(log_path) if log_path else None  # fail before writing anything
    if arch is not None:
      title = arch if arch in presets.PRESETS else os.path.basename(os.path.normpath(
          os.path.dirname(arch) or ".")) + "/" + os.path.basename(arch)
      written.append(viz.plot_arch(arch, size, os.path.join(out_dir, run_files.ARCH_PICTURE), title=title,
                                   num_classes=classes))
    if log is not None:
      path, drawn = viz.plot_search(log, os.path.join(out_dir, run_files.SEARCH_PICTURE))
      written.append(path)
      notes.append(f"{run_files.SEARCH_PICTURE}: {len(log[viz.STEP_COLUMN])} epochs, {len(drawn)} decision gates")
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for path in written:
    print(_describe(path))
  for note in notes:
    print(note, file=sys.stderr if note.startswith("note:") else sys.stdout)
  return 0


if __name__ == "__main__":
  app.run(lambda argv: sys.exit(main(argv)))
