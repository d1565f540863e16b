"""Evaluation the paper's way: Prec@1 / Prec@5 over a split, printed as the
official eval script does (`Test: [n/N]  Prec@1 x  Prec@5 y`)."""

import numpy as np
import tensorflow as tf


def topk_correct(logits, labels):
  """(top-1 hits, top-5 hits) of a batch, as NumPy ints."""
  logits = np.asarray(logits)
  labels = np.asarray(labels).reshape(-1)
  k = min(5, logits.shape[-1])
  top = np.argsort(-logits, axis=-1, kind="stable")[:, :k]
  hit = top == labels[:, None]
  return int(hit[:, 0].sum()), int(hit.any(axis=1).sum())


def examples_seen(split_size, steps, batch_size):
  """How many examples `steps` batches of `batch_size` (None: all) of a split
  of `split_size` examples hold (None: unknown), for `evaluate`'s `total`."""
  if steps is None:
    return split_size
  return steps * batch_size if split_size is None else min(split_size, steps * batch_size)


def evaluate(predict_fn, dataset, steps=None, total=None, log=print, log_every=20):
  """Runs `predict_fn(images) -> logits` over `dataset` of (images, labels).

  Args:
    predict_fn: callable on a batch of images.
    dataset: finite tf.data dataset of (images, int labels).
    steps: stop after this many batches (None: the whole dataset).
    total: number of examples for the progress lines (None: unknown).
    log: printer (None: silent).
    log_every: print a running line every this many batches.

  Returns:
    {"top1": %, "top5": %, "examples": n, "max_abs_logit": the largest
    finite |logit| seen, "non_finite": images with a NaN or infinite logit}
  """
  n = c1 = c5 = non_finite = 0
  max_abs = 0.0
  denominator = total if total is not None else "?"
  for i, (images, labels) in enumerate(dataset):
    if steps is not None and i >= steps:
      break
    logits = np.asarray(predict_fn(images), np.float64)
    finite = np.isfinite(logits)
    non_finite += int((~finite.all(axis=-1)).sum())
    if finite.any():
      max_abs = max(max_abs, float(np.abs(logits[finite]).max()))
    a, b = topk_correct(logits, labels)
    c1, c5, n = c1 + a, c5 + b, n + int(np.shape(labels)[0])
    if log and (i + 1) % log_every == 0:
      log(f"Test: [{n}/{denominator}]\tPrec@1 {100 * c1 / n:.3f}\tPrec@5 {100 * c5 / n:.3f}")
  if n == 0:
    raise ValueError("evaluation saw no examples")
  if log:
    log(f"Test: [{n}/{n}]\tPrec@1 {100 * c1 / n:.1f}\tPrec@5 {100 * c5 / n:.1f}")
    log(f"logits: max |logit| {max_abs:.4g}, non-finite on {non_finite} of {n} images")
  return {"top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n, "examples": n,
          "max_abs_logit": max_abs, "non_finite": non_finite}


def keras_predict_fn(model):
  fn = tf.function(lambda x: model(x, training=False))
  return lambda images: fn(images).numpy()


def recalibrate_batch_norm(model, dataset, num_batches):
  """Re-estimates every BN layer's moving statistics as the plain average of
  its batch statistics over `num_batches` training batches.

  Why it matters here: LightNL's affinity has no softmax, so its output is
  cubic in its input, and any mismatch between batch and moving statistics
  (early in training, or with EMA weights whose BN statistics were collected
  for the raw weights) is amplified block after block at inference. The
  trainer therefore re-calibrates before its final evaluation.

  Each BN runs with momentum 0 (moving stats := this batch's stats) inside one
  traced forward pass; the per-batch stats are averaged outside.
  """
  import keras
  bns = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
  saved = [bn.momentum for bn in bns]
  stats = [v for bn in bns for v in (bn.moving_mean, bn.moving_variance)]
  sums = [np.zeros(v.shape, np.float64) for v in stats]
  seen = 0
  try:
    for bn in bns:
      bn.momentum = 0.0
    step = tf.function(lambda x: (model(x, training=True), [tf.identity(v) for v in stats])[1])
    for i, (images, _) in enumerate(dataset):
      if i >= num_batches:
        break
      for acc, value in zip(sums, step(images)):
        acc += value.numpy()
      seen += 1
  finally:
    for bn, m in zip(bns, saved):
      bn.momentum = m
  if seen == 0:
    raise ValueError("BN re-calibration saw no batches")
  for v, acc in zip(stats, sums):
    v.assign((acc / seen).astype(np.float32))
  return seen
