"""A package's names imported from their modules on first use (PEP 562), so
that importing the package, or one light module of it, does not import the
heavy ones (TensorFlow) behind the others."""

import importlib
import sys
from typing import Dict, Sequence


def exports(package: str, modules: Dict[str, Sequence[str]]):
  """`(names, __getattr__, __dir__)` for `package` (its `__name__`), whose
  names are `{module: names}`, each module relative to the package."""
  module_of = {name: module for module, names in modules.items() for name in names}

  def __getattr__(name):
    if name in module_of:
      return getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
    raise AttributeError(f"module {package!r} has no attribute {name!r}")

  def __dir__():
    return sorted(set(vars(sys.modules[package])) | set(module_of))

  return sorted(module_of), __getattr__, __dir__
