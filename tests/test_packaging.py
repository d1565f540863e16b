"""autonl_tf as a package: built from pyproject.toml, installed into a bare
target directory and imported from outside the checkout, as a user would;
`import autonl_tf` alone lets Keras load the `.keras` files it saves."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import autonl_tf
from conftest import TINY_ARCH

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_outside(code, cwd, pythonpath, args=(), timeout=300):
  """Runs `code` in a fresh interpreter in `cwd` with only `pythonpath` added
  to the venv's own site-packages (which hold the dependencies)."""
  env = dict(os.environ, PYTHONPATH=str(pythonpath))
  return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


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


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """A trained `.keras` file with MBConv, SE and LightNL blocks, compiled
  with the recipe's loss, schedule and optimizer (EMA on), and the logits it
  gives on a few images: (model path, images path, logits path)."""
  import keras
  from autonl_tf import io
  from autonl_tf.data import DataConfig
  from autonl_tf.training.trainer import TrainConfig, build_and_compile
  tmp = tmp_path_factory.mktemp("saved")
  arch = tmp / "arch.txt"
  arch.write_text(TINY_ARCH)
  config = TrainConfig(arch=str(arch), data=DataConfig("synthetic", input_size=8, num_classes=4),
                       model_dir=str(tmp), batch_size=8, epochs=1)
  model = build_and_compile(config, num_classes=4, steps_per_epoch=2)
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(16, 8, 8, 3)).astype("float32"), rng.integers(0, 4, 16)
  model.fit(x, y, batch_size=8, epochs=1, verbose=0)
  assert {"MBConv", "LightNL", "SqueezeExcite"} <= {
      type(l).__name__ for l in model._flatten_layers()}
  paths = tuple(str(tmp / name) for name in ("final.keras", "images.npy", "logits.npy"))
  io.save_model(model, paths[0])
  np.save(paths[1], x[:4])
  np.save(paths[2], keras.ops.convert_to_numpy(model(x[:4], training=False)))
  return paths


#: Loads `saved` after `import autonl_tf` (and Keras, in the given order) and
#: prints what it holds.
LOAD = (
    "import sys\n"
    "import numpy as np\n"
    "{imports}\n"
    "model = keras.models.load_model(sys.argv[1])\n"
    "logits = keras.ops.convert_to_numpy(model(np.load(sys.argv[2]), training=False))\n"
    "np.testing.assert_allclose(logits, np.load(sys.argv[3]), rtol=1e-5, atol=1e-6)\n"
    "print(type(model.optimizer).__name__, model.optimizer.get_config()['learning_rate']['class_name'],\n"
    "      type(model.loss).__name__, model.optimizer.iterations.numpy())\n")
LOADED = "RMSpropTF WarmupExponentialDecay SparseLabelSmoothingCrossEntropy 2"


@pytest.mark.parametrize("imports", ["import autonl_tf\nimport keras",
                                     "import keras\nimport autonl_tf"])
def test_import_autonl_tf_alone_loads_a_saved_model(saved, imports, tmp_path):
  proc = python_outside(LOAD.format(imports=imports), tmp_path, ROOT, args=saved)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip().splitlines()[-1] == LOADED


def test_keras_objects_are_every_class_a_saved_model_holds():
  objects = autonl_tf.keras_objects()
  assert set(objects) >= {f"autonl_tf>{name}" for name in (
      "LightNL", "NonLocal", "MBConv", "MixedDepthwiseConv2D", "GroupedConv2D", "SqueezeExcite",
      "DropConnect", "BatchNormalization", "DepthwiseConv2D", "SparseLabelSmoothingCrossEntropy",
      "WarmupExponentialDecay", "RMSpropTF")}
  assert all(obj.__module__.startswith("autonl_tf.") for obj in objects.values())


@pytest.mark.slow
def test_installed_package_holds_the_library_and_its_presets(installed):
  top = sorted(p.name for p in installed.iterdir() if not p.name.endswith(".dist-info"))
  assert top == ["autonl_tf"]
  assert (installed / f"autonl_tf-{autonl_tf.__version__}.dist-info").is_dir()
  presets = sorted(p.name for p in (installed / "autonl_tf" / "arch" / "presets").iterdir())
  assert presets == sorted(os.listdir(os.path.join(ROOT, "autonl_tf", "arch", "presets")))


@pytest.mark.slow
def test_installed_package_imports_outside_the_checkout(installed, saved, tmp_path):
  """The issue's "done" check: from another directory, the installed package
  imports, counts AutoNL-S's 4,389,350 parameters (and draws a random
  network of the CIFAR space) without TensorFlow, builds
  it with the same count of trainable weights (Keras' `count_params()` adds
  the 31,872 BN moving means and variances: 4,421,222), and loads a trained
  `.keras` file after `import autonl_tf` alone."""
  code = (
      "import sys\n"
      "import autonl_tf\n"
      "from autonl_tf import arch, flops\n"
      "from autonl_tf.search import sampling, space\n"
      "import random\n"
      "drawn = sampling.sample_arch(space.get_space('cifar'), random.Random(0))\n"
      "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
      "print(autonl_tf.__file__)\n"
      "print(flops.count(arch.load('autonl-s'), 224, 1000).params, heavy)\n"
      "from autonl_tf.layers import LightNL\n"
      "model = autonl_tf.build_model('autonl-s')\n"
      "print(sum(int(w.numpy().size) for w in model.trainable_weights), model.count_params())\n"
      + LOAD.format(imports="import keras"))
  proc = python_outside(code, tmp_path, installed, args=saved)
  assert proc.returncode == 0, proc.stderr[-3000:]
  where, count, params, loaded = proc.stdout.strip().splitlines()[-4:]
  assert where.startswith(str(installed))
  assert count == "4389350 []"  # the MAC counter and sampler import neither TensorFlow nor Keras
  assert params == "4389350 4421222"
  assert loaded == LOADED
