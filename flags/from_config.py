"""absl flags derived from a config dataclass, and the config's fields read
back from them.

A field's flag has the field's name, its default and, as help, the field's
entry in the `Attributes:` section of the dataclass's docstring; its type is
the field's (`Optional[X]` as `X`); a field with fixed values (`choices`)
is an enum flag; a field without a default is a required flag.
"""

import dataclasses
import inspect
import re
import typing
from typing import Dict, Iterable, Mapping, Sequence

from absl import flags

FLAGS = flags.FLAGS

_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string}
_ENTRY = re.compile(r"(\w+)(?: \([^)]*\))?: (.*)")


def field_docs(config_cls) -> Dict[str, str]:
  """{field: its description} from the `Attributes:` section of
  `config_cls`'s docstring (Google style: `name: text`, continued on lines
  indented deeper)."""
  lines = inspect.getdoc(config_cls).splitlines()
  docs, name, indent = {}, None, None
  for line in lines[next(i for i, l in enumerate(lines) if l.strip() == "Attributes:") + 1:]:
    if not line.strip():
      continue
    depth = len(line) - len(line.lstrip())
    indent = depth if indent is None else indent
    entry = _ENTRY.fullmatch(line.strip())
    if depth == indent and entry:
      name = entry.group(1)
      docs[name] = entry.group(2)
    elif depth > indent and name:
      docs[name] += " " + line.strip()
    else:
      break
  return docs


def _flag_type(field):
  kind = field.type
  if typing.get_origin(kind) is typing.Union:
    kind = next(a for a in typing.get_args(kind) if a is not type(None))
  if kind not in _DEFINE:
    raise TypeError(f"field {field.name} ({kind}) is not flag material: skip it")
  return kind


def _required(field) -> bool:
  return (field.default is dataclasses.MISSING
          and field.default_factory is dataclasses.MISSING)


def flag_fields(config_cls, skip: Iterable[str] = ()) -> Sequence[dataclasses.Field]:
  """The fields of `config_cls` that are flags (all but `skip`)."""
  skip = set(skip)
  return [f for f in dataclasses.fields(config_cls) if f.name not in skip]


def define(config_cls, skip: Iterable[str] = (),
           choices: Mapping[str, Sequence[str]] = None,
           aliases: Mapping[str, str] = None, module_name: str = None):
  """Defines a flag per field of `config_cls` but `skip` (see the module
  docstring); `choices` {field: values} makes enum flags, `aliases` {old
  flag name: field} names that set the field's flag too; `module_name` is
  the module `--helpfull` lists them under."""
  choices = choices or {}
  docs = field_docs(config_cls)
  for field in flag_fields(config_cls, skip):
    if field.name not in docs:
      raise ValueError(f"{config_cls.__name__}.{field.name} has no entry in the docstring's "
                       "Attributes: section (its flag's help)")
    default = None if _required(field) else field.default
    kind = _flag_type(field)
    if field.name in choices:
      flags.DEFINE_enum(field.name, default, list(choices[field.name]), docs[field.name],
                        module_name=module_name)
    else:
      _DEFINE[kind](field.name, default, docs[field.name], module_name=module_name)
    if _required(field):
      flags.mark_flag_as_required(field.name)
  for old, name in (aliases or {}).items():
    flags.DEFINE_alias(old, name, module_name=module_name)


def values(config_cls, skip: Iterable[str] = ()) -> dict:
  """{field: its flag's value} for the fields `define` made flags of."""
  return {f.name: FLAGS[f.name].value for f in flag_fields(config_cls, skip)}

