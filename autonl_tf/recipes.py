"""Named training recipes: the paper's ImageNet recipe and a CIFAR recipe.

A recipe is a set of `TrainConfig` and `SearchConfig` field values; every
value can still be overridden (`train_config("cifar", ..., lr_per_256=0.1)`,
or a flag of the tools).

* `imagenet` (the defaults of both configs, `training.config` and
  `search.config`): MnasNet / AutoNL (arXiv
  2004.01961 section 5; MnasNet section 5): RMSProp (decay 0.9, momentum 0.9,
  epsilon 1e-3), 0.016 per 256 images, 5 warm-up epochs, x0.97 every 2.4
  epochs, label smoothing 0.1, weight decay 1e-5, dropout 0.2, drop-connect
  0.2, weight EMA 0.9999, BN momentum 0.99.
* `cifar`: what CIFAR practitioners use (He et al. 2016; the Keras
  `cifar10_resnet` example): SGD with Nesterov momentum
  0.9, 0.1 per 128 images, one warm-up epoch then cosine decay to 0, weight
  decay 5e-4 on conv / dense kernels (not BN, not biases), label smoothing
  0.1, dropout 0.2, drop-connect 0.1, no weight EMA, batch 128, BN momentum
  0.9 (PyTorch's default 0.1): statistics that follow the weights within an
  epoch, so the per-epoch validation measures the current weights. The
  pipeline's small-image augmentation is pad-4 / random 32x32 crop / flip.
"""

import dataclasses
from typing import Dict

from autonl_tf.search.config import SearchConfig
from autonl_tf.training.config import TrainConfig

_CONFIGS = {"train": TrainConfig, "search": SearchConfig}

#: recipe -> {"train": TrainConfig fields, "search": SearchConfig fields}, the
#: values that differ from the configs' defaults (`imagenet`: none).
RECIPES: Dict[str, Dict[str, dict]] = {
    "imagenet": {"train": {}, "search": {}},
    "cifar": {
        "train": dict(optimizer="sgd", nesterov=True, batch_size=128, lr_per_256=0.2,
                      lr_schedule="cosine", lr_warmup_epochs=1.0, weight_decay=5e-4,
                      drop_connect_rate=0.1, ema_momentum=0.0, bn_momentum=0.9),
        "search": dict(optimizer="sgd", nesterov=True, lr_per_256=0.2,
                       weight_decay=5e-4),
    },
}


def recipe(name: str, kind: str) -> dict:
  """The field values of recipe `name` for `kind` (`train` or `search`):
  every field that some recipe sets, at this recipe's value or the config's
  default."""
  if name not in RECIPES:
    raise ValueError(f"unknown recipe '{name}' (known: {', '.join(RECIPES)})")
  defaults = {f.name: f.default for f in dataclasses.fields(_CONFIGS[kind])}
  fields = sorted({k for r in RECIPES.values() for k in r[kind]})
  return {k: RECIPES[name][kind].get(k, defaults[k]) for k in fields}


def train_config(name: str, **fields):
  """A `TrainConfig` of recipe `name`; `fields` (arch, data, model_dir, and
  any recipe value) override."""
  return TrainConfig(**{**recipe(name, "train"), **fields})


def search_config(name: str, **fields):
  """A `SearchConfig` of recipe `name`; `fields` override."""
  return SearchConfig(**{**recipe(name, "search"), **fields})
