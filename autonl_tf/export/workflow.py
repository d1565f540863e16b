"""What `tools/export.py` (and the pipeline's export stage) does: load a
trained model, find its class names and images, write the SavedModel and/or
the TFLite variants with their parity reports."""

import dataclasses
import os
from typing import Callable, List, Optional, Sequence

import numpy as np

from autonl_tf import constants
from autonl_tf import io
from autonl_tf import run_files
from autonl_tf.arch.codec import ArchLimits
from autonl_tf.data import DataConfig, DataError, dataset_info, decoded_size, make_dataset
from autonl_tf.export import saved_model, tflite
from autonl_tf.export.loading import load_keras_model
from autonl_tf.export.saved_model import ExportError


@dataclasses.dataclass
class ExportRequest:
  """One export: what to load, where to write, which formats.

  Attributes:
    model: a .keras file or a .weights.h5 checkpoint (with `arch`; EMA
      weights are used when it holds them).
    export_dir: base directory; the SavedModel goes to <export_dir>/<version>.
    version: SavedModel version (TF Serving serves the highest).
    overwrite: replace an existing <export_dir>/<version> (or TFLite files).
    top_k: size of the top_k_* outputs.
    max_image_pixels: predict_images refuses, before decoding, an image whose
      header declares more pixels than this (all frames of an animated GIF
      together).
    labels: class names file, one per line (overrides the dataset's).
    tflite: write TFLite models instead of the SavedModel: any of
      `tflite.VARIANTS` (int8 needs `data`).
    data: the dataset of the parity and calibration images (None: the
      training run's, read beside `model`, else random pixels for parity).
    arch: the architecture of a checkpoint (a .keras file holds its own).
    input_size: a checkpoint's input height and width.
    num_classes: a checkpoint's classes.
    arch_limits: raised architecture limits for a checkpoint's arch.
    representative_images: int8: calibration images from
      `representative_split`.
    representative_split: int8: split of the calibration images.
    parity_images: held-out images for the TFLite parity report.
    parity_split: split of the parity images.
    seed: seed of the random parity pixels (no `data`).
  """
  model: str
  export_dir: str
  version: int = 1
  overwrite: bool = False
  top_k: int = 5
  max_image_pixels: int = decoded_size.DEFAULT_MAX_PIXELS
  labels: Optional[str] = None
  tflite: Sequence[str] = ()
  data: Optional[DataConfig] = None
  arch: Optional[str] = None          # checkpoints only
  input_size: int = constants.INPUT_SIZE      # checkpoints only
  num_classes: int = constants.NUM_CLASSES    # checkpoints only
  arch_limits: Optional[ArchLimits] = None  # checkpoints only
  representative_images: int = 200
  representative_split: str = "train"
  parity_images: int = 100
  parity_split: str = "test"
  seed: int = 0


def training_data_config(model_path: str) -> Optional[DataConfig]:
  """The DataConfig of the training run that wrote `model_path`, read from
  the run's config.json beside it (or one directory up for checkpoints)."""
  here = os.path.dirname(os.path.abspath(model_path))
  for d in (here, os.path.dirname(here)):
    path = os.path.join(d, run_files.CONFIG)
    if os.path.exists(path):
      try:
        data = run_files.saved_fields(run_files.CONFIG, io.read_json(path)).get("data")
        return DataConfig(**data) if data else None
      except (ValueError, TypeError):
        return None
  return None


def readable_training_data(model_path: str, log=None) -> Optional[DataConfig]:
  """`training_data_config`, when that dataset can be read here (else None,
  and `log` says why: class names are what a missing dataset costs)."""
  data = training_data_config(model_path)
  if data is None:
    return None
  try:
    dataset_info(data)
  except DataError as e:
    if log:
      log(f"note: no class names ({e})")
    return None
  return data


def class_names(request: ExportRequest, num_classes: int, log=print) -> Optional[List[str]]:
  if request.labels:
    if not os.path.exists(request.labels):
      raise ExportError(f"labels file {request.labels} does not exist")
    names = saved_model.read_labels(request.labels)
    if len(names) != num_classes:
      raise ExportError(f"{request.labels} has {len(names)} lines for {num_classes} classes")
    return names
  if request.data is not None:
    return dataset_info(request.data).class_names
  data = readable_training_data(request.model, log)
  if data is None:
    return None
  names = dataset_info(data).class_names
  return names if len(names) == num_classes else None


def images_from(data: DataConfig, split: str, count: int) -> np.ndarray:
  """`count` eval-preprocessed 0-255 images of `split` (deterministic order)."""
  batch = min(count, 100)
  ds = make_dataset(data, split, batch, training=False, normalize=False, drop_remainder=False)
  out, n = [], 0
  for images, _ in ds:
    out.append(images.numpy())
    n += len(out[-1])
    if n >= count:
      break
  if not out:
    raise DataError(f"split '{split}' of {data.dataset} has no images")
  return np.concatenate(out)[:count]


def run_export(request: ExportRequest, log: Callable = print) -> dict:
  """Returns {"saved_model": path} or {"tflite": {variant: (path, report)}}."""
  for v in request.tflite:
    if v not in tflite.VARIANTS:
      raise ExportError(f"unknown TFLite variant {v!r}: expected one of {', '.join(tflite.VARIANTS)}")
  if request.tflite and request.data is None:
    # TFLite parity and int8 calibration want real images: the training
    # run's dataset (config.json beside the model) when it can be read.
    trained_on = readable_training_data(request.model)
    if trained_on is not None:
      request = dataclasses.replace(request, data=trained_on)
  if "int8" in request.tflite and request.data is None:
    raise ExportError("--tflite=int8 needs --dataset for its representative images")
  paths = {v: os.path.join(request.export_dir, run_files.tflite_model(v)) for v in request.tflite}
  existing = [p for p in paths.values() if os.path.exists(p)]
  if existing and not request.overwrite:  # all or nothing: checked before anything is written
    raise ExportError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: "
                      "pass --overwrite to replace, or leave out those variants; nothing was "
                      "written")
  model, what = load_keras_model(request.model, request.arch, request.input_size,
                                 request.num_classes, request.arch_limits)
  size = saved_model.input_size_of(model)
  classes = saved_model.num_classes_of(model)
  data = None
  if request.data is not None:
    data = dataclasses.replace(request.data, input_size=size)
    info = dataset_info(data)
    if info.num_classes != classes:
      raise ExportError(f"{data.dataset} has {info.num_classes} classes but the model "
                        f"has {classes} outputs")
  request = dataclasses.replace(request, data=data)
  names = class_names(request, classes, log)
  log(f"loaded {what}: input {size}x{size}, {classes} classes"
      f"{', class names from ' + (request.labels or (data.dataset if data else 'the training run')) if names else ''}")
  if not request.tflite:
    path = saved_model.export_saved_model(model, request.export_dir, request.version, names,
                                          request.top_k, request.overwrite,
                                          request.max_image_pixels)
    log(f"wrote SavedModel {path} (signatures serving_default, predict_images)")
    return {"saved_model": path}

  if data is not None:
    parity_images = images_from(data, request.parity_split, request.parity_images)
    parity_source = f"{data.dataset} {request.parity_split}"
  else:
    rng = np.random.default_rng(request.seed)
    parity_images = rng.uniform(0, 255, (request.parity_images, size, size, 3)).astype(np.float32)
    parity_source = "uniform random pixels (no --dataset)"
  representative = None
  image_sets = [(parity_images, f"parity images ({parity_source})")]
  if "int8" in request.tflite:
    representative = images_from(data, request.representative_split, request.representative_images)
    image_sets.append((representative, f"calibration images ({data.dataset} "
                                       f"{request.representative_split})"))
  # Everything that can refuse the export runs before anything is written.
  tflite.check_finite_outputs(model, request.tflite, image_sets)
  os.makedirs(request.export_dir, exist_ok=True)
  for stale in saved_model.remove_stale_temporaries(request.export_dir):
    log(f"removed {stale}, left in {request.export_dir} by a killed export")
  if names is not None:
    saved_model.write_labels(os.path.join(request.export_dir, saved_model.LABELS_FILE), names)
  results = {}
  for variant, path in paths.items():
    report = tflite.export_tflite(
        model, path, variant, parity_images, parity_source,
        representative_images=representative,
        representative_source=f"{data.dataset} {request.representative_split}" if data else "")
    log(tflite.format_report(report))
    results[variant] = (path, report)
  return {"tflite": results}
