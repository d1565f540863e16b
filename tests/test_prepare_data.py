"""tools/prepare_data.py offline sources on small fake source files: the
result loads with plain `tfds.load` in a fresh process."""

import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                        env=env)


def fake_cifar_package(root, per_batch=3):
  """The npm package layout: one PNG per batch (one 32x32 image per row of
  1024 RGB pixels) and label JSON (the package spells it 'lables')."""
  rng = np.random.default_rng(0)
  root.mkdir()
  images = {}
  for split, batches in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
    labels = []
    for b in batches:
      imgs = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
      Image.fromarray(imgs.reshape(per_batch, 1024, 3)).save(root / f"{b}.png")
      images[b] = imgs
      labels += [int(v) for v in rng.integers(0, 10, per_batch)]
    (root / f"{split}_lables.json").write_text(json.dumps(labels))
  return images


def test_cifar10_offline_fake_source(tmp_path):
  pkg = tmp_path / "package"
  images = fake_cifar_package(pkg)
  data_dir = tmp_path / "tfds"
  proc = run([os.path.join(ROOT, "tools", "prepare_data.py"), "--dataset=cifar10",
              f"--data_dir={data_dir}", f"--source_dir={pkg}"])
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "cifar10: prepared" in proc.stdout
  check = (
      "import numpy as np, tensorflow_datasets as tfds, json\n"
      f"ds, info = tfds.load('cifar10', data_dir={str(data_dir)!r}, split='train', with_info=True)\n"
      "ims = [ex['image'].numpy() for ex in ds]\n"
      "print(json.dumps({'n': len(ims), 'version': str(info.version), "
      "'names': info.features['label'].names, 'sum': int(np.sum([im.astype(int).sum() for im in ims]))}))\n")
  proc = run(["-c", check])
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["n"] == 15 and out["version"] == "3.0.2"
  assert out["names"][:2] == ["airplane", "automobile"]
  want = sum(int(images[f"data_batch_{i}"].astype(int).sum()) for i in range(1, 6))
  assert out["sum"] == want
  # Rerun: already prepared, nothing rebuilt.
  proc = run([os.path.join(ROOT, "tools", "prepare_data.py"), "--dataset=cifar10",
              f"--data_dir={data_dir}", f"--source_dir={pkg}"])
  assert proc.returncode == 0 and "already prepared" in proc.stdout


def write_idx(path, array, magic):
  with gzip.open(path, "wb") as f:
    f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
    f.write(array.astype(np.uint8).tobytes())


def test_fashion_mnist_offline_fake_source(tmp_path):
  # TFDS's builder reads exactly 60000 + 10000 records, so the fake files
  # have the real counts (mostly zeros, tiny once gzipped).
  src = tmp_path / "idx"
  src.mkdir()
  train = np.zeros((60000, 28, 28), np.uint8)
  train[0, 5, 5] = 200
  labels = np.arange(60000) % 10
  write_idx(src / "train-images-idx3-ubyte.gz", train, 2051)
  write_idx(src / "train-labels-idx1-ubyte.gz", labels, 2049)
  write_idx(src / "t10k-images-idx3-ubyte.gz", np.zeros((10000, 28, 28)), 2051)
  write_idx(src / "t10k-labels-idx1-ubyte.gz", np.arange(10000) % 10, 2049)
  data_dir = tmp_path / "tfds"
  proc = run([os.path.join(ROOT, "tools", "prepare_data.py"), "--dataset=fashion_mnist",
              f"--data_dir={data_dir}", f"--source_dir={src}"])
  assert proc.returncode == 0, proc.stderr[-2000:]
  check = (
      "import tensorflow_datasets as tfds, json\n"
      f"b = tfds.builder('fashion_mnist', data_dir={str(data_dir)!r})\n"
      f"ds = tfds.load('fashion_mnist', data_dir={str(data_dir)!r}, split='test')\n"
      "print(json.dumps({k: v.num_examples for k, v in b.info.splits.items()} | "
      "{'shape': list(b.info.features['image'].shape), 'first': int(next(iter(ds))['label'])}))\n")
  proc = run(["-c", check])
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["train"] == 60000 and out["test"] == 10000 and out["shape"] == [28, 28, 1]
  assert 0 <= out["first"] < 10


def test_missing_source_is_a_clear_error(tmp_path):
  proc = run([os.path.join(ROOT, "tools", "prepare_data.py"), "--dataset=fashion_mnist",
              f"--data_dir={tmp_path}", f"--source_dir={tmp_path}/none"])
  assert proc.returncode == 2
  assert "not found in" in proc.stderr and "Traceback" not in proc.stderr
