"""autonl_tf as a package: built from pyproject.toml, installed into a bare
target directory and imported from outside the checkout, as a user would."""

import os
import shutil
import subprocess
import sys

import pytest

import autonl_tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_outside(code, cwd, pythonpath, timeout=300):
  """Runs `code` in a fresh interpreter in `cwd` with only `pythonpath` added
  to the venv's own site-packages (which hold the dependencies)."""
  env = dict(os.environ, PYTHONPATH=str(pythonpath))
  return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """`pip install --target` of a copy of the checkout (a build writes build/
  and *.egg-info beside its sources): the directory the package went to."""
  tmp = tmp_path_factory.mktemp("packaging")
  src = tmp / "src"
  src.mkdir()
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(ROOT, name), src / name)
  for name in ("autonl_tf", "flags", "tools"):  # flags/ and tools/ must stay out of it
    shutil.copytree(os.path.join(ROOT, name), src / name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
  target = tmp / "site"
  proc = subprocess.run(
      [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
       "--no-build-isolation", "--target", str(target), str(src)],
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return target


@pytest.mark.slow
def test_installed_package_holds_the_library_and_its_presets(installed):
  top = sorted(p.name for p in installed.iterdir() if not p.name.endswith(".dist-info"))
  assert top == ["autonl_tf"]
  assert (installed / f"autonl_tf-{autonl_tf.__version__}.dist-info").is_dir()
  presets = sorted(p.name for p in (installed / "autonl_tf" / "arch" / "presets").iterdir())
  assert presets == sorted(os.listdir(os.path.join(ROOT, "autonl_tf", "arch", "presets")))


@pytest.mark.slow
def test_installed_package_imports_outside_the_checkout(installed, tmp_path):
  code = (
      "import sys\n"
      "import autonl_tf\n"
      "from autonl_tf import arch, flops\n"
      "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
      "print(autonl_tf.__file__)\n"
      "print(flops.count(arch.load('autonl-s'), 224, 1000).params, heavy)\n"
      "from autonl_tf.layers import LightNL\n"
      "model = autonl_tf.build_model('autonl-s')\n"
      "print(sum(int(w.numpy().size) for w in model.trainable_weights))\n")
  proc = python_outside(code, tmp_path, installed)
  assert proc.returncode == 0, proc.stderr[-3000:]
  where, count, trainable = proc.stdout.strip().splitlines()[-3:]
  assert where.startswith(str(installed))
  assert count == "4389350 []"  # the MAC counter imports neither TensorFlow nor Keras
  assert trainable == "4389350"
