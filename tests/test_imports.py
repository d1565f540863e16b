"""The import graph: every module of `autonl_tf` imports on its own in a
fresh interpreter (no cycle that only some import order survives), and the
latency and training code (`autonl_tf.latency`, `autonl_tf.training`) import
nothing from `autonl_tf.search`: the search imports them, not the other way
round."""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module_files(package="autonl_tf"):
  """{module name: file} of every module of `package` in the checkout."""
  out = {}
  for folder, subfolders, files in os.walk(os.path.join(ROOT, *package.split("."))):
    subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
    for name in sorted(f for f in files if f.endswith(".py")):
      parts = os.path.relpath(os.path.join(folder, name), ROOT)[:-len(".py")].split(os.sep)
      out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = os.path.join(folder, name)
  return out


def _imported(module, path):
  """Every module name the file of `module` imports, at any depth (lazy
  imports inside functions included), relative imports resolved; for
  `from a import b` both `a` and `a.b`."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
      yield base
      yield from (f"{base}.{alias.name}" for alias in node.names)


@pytest.mark.parametrize("lower", ["autonl_tf.latency", "autonl_tf.training"])
def test_the_latency_and_training_code_import_nothing_from_the_search(lower):
  """The search builds on the latency code and on training (its fit loop,
  schedules), never the reverse; recipes, which set both configs, live
  above both (`autonl_tf.recipes`)."""
  modules = {m: p for m, p in _module_files().items() if m == lower or m.startswith(lower + ".")}
  assert len(modules) >= 3
  found = {m: sorted(name for name in _imported(m, p)
                     if name == "autonl_tf.search" or name.startswith("autonl_tf.search."))
           for m, p in modules.items()}
  assert not {m: names for m, names in found.items() if names}


def test_the_import_parser_sees_lazy_and_relative_imports(tmp_path):
  lazy, relative = tmp_path / "lazy.py", tmp_path / "relative.py"
  lazy.write_text("def f():\n  from autonl_tf.search import pieces\n")
  relative.write_text("from ..search import space\n")
  assert "autonl_tf.search.pieces" in set(_imported("autonl_tf.latency.lazy", str(lazy)))
  assert "autonl_tf.search" in set(_imported("autonl_tf.latency.relative", str(relative)))


#: Run in one fresh interpreter: third-party packages load once, then every
#: module of `autonl_tf` is imported from a clean slate (every `autonl_tf`
#: module dropped from `sys.modules` first), so each import sees no module of
#: this package that another import loaded before it.
_IMPORT_EACH_ALONE = """
import importlib, sys, traceback
import numpy, tensorflow, keras, matplotlib
failed = {}
for module in sys.argv[1:]:
  for name in [m for m in sys.modules if m == "autonl_tf" or m.startswith("autonl_tf.")]:
    del sys.modules[name]
  try:
    importlib.import_module(module)
  except Exception:
    failed[module] = traceback.format_exc()[-1500:]
for module, err in failed.items():
  print(module + ":", err, sep="\\n", file=sys.stderr)
sys.exit(1 if failed else 0)
"""


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter():
  modules = sorted(_module_files())
  assert len(modules) > 50 and "autonl_tf.search.pieces" in modules
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, "-c", _IMPORT_EACH_ALONE, *modules], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-20000:]
