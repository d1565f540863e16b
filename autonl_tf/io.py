"""Files written whole or not at all, and JSON. Pure Python.

Everything the library writes for a later reader (a resumed run, the other
workers, a tool watching a running search, TF Serving) goes through
`atomic_path`: the content goes to a temporary name beside the target,
`.<name>.tmp-<pid>` (hidden, so globs such as `epoch_*.weights.h5` skip it,
and tagged with the writer's process id, so a killed writer's leftovers are
recognisable), is flushed to disk (fsync) and renamed over the target, which
POSIX makes atomic; then the directory is flushed so that the rename
survives a crash too. A reader sees the old file or the new one, never part
of one, and a failed write leaves the old one and no temporary behind.
"""

import contextlib
import json
import os
import re
import shutil
from typing import Any, Iterator, List, Pattern, Union

PathLike = Union[str, os.PathLike]

#: `temporary_name`'s names (`.<name>.tmp-<pid>...`), the writer's pid in group 1.
TEMPORARY = re.compile(r"^\..+?\.tmp-(\d+)")


def temporary_name(path: PathLike, suffix: str = "") -> str:
  """The temporary name `atomic_path` writes `path` under.

  `suffix` is an ending that `path` has and the writer insists on (Keras
  saves `.keras` and `.weights.h5` names only); it stays at the end:
  `run/final.keras` -> `run/.final.tmp-<pid>.keras`.
  """
  path = os.fspath(path)
  directory, name = os.path.split(path)
  if suffix:
    if not name.endswith(suffix):
      raise ValueError(f"{path} does not end with {suffix}")
    name = name[:-len(suffix)]
  return os.path.join(directory, f".{name}.tmp-{os.getpid()}{suffix}")


def process_running(pid: int) -> bool:
  """Whether process `pid` exists (this one does)."""
  if pid == os.getpid():
    return True
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's
    return True
  return True


def remove_stale_temporaries(directory: PathLike, pattern: Pattern = TEMPORARY) -> List[str]:
  """Removes the temporary files and directories that killed writers left
  in `directory`: names matching `pattern` whose writer (the pid in the
  first group that matched; none: an older writer's) is gone. A write under
  way in a live process is left alone. Returns the names removed."""
  removed = []
  if not os.path.isdir(directory):
    return removed
  for name in sorted(os.listdir(directory)):
    m = pattern.search(name)
    if not m:
      continue
    pid = next((g for g in m.groups() if g is not None), None)
    if pid is not None and process_running(int(pid)):
      continue
    path = os.path.join(directory, name)
    if os.path.isdir(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      try:
        os.remove(path)
      except OSError:  # gone meanwhile, or not ours to remove: left alone
        continue
    removed.append(name)
  return removed


def _fsync(path: str, directory: bool = False):
  try:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
  except OSError:  # e.g. directories cannot be opened on this platform
    return
  try:
    os.fsync(fd)
  except OSError:  # a file system without fsync for directories
    pass
  finally:
    os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = "") -> Iterator[str]:
  """Yields the temporary name to write `path` under (see the module
  docstring); when the block ends normally the file is flushed and renamed
  to `path`, when it raises the temporary file is removed.

  Example:
  >>> with atomic_path("run/final.keras", suffix=".keras") as tmp:
  ...   model.save(tmp)
  """
  path = os.fspath(path)
  tmp = temporary_name(path, suffix)
  try:
    yield tmp
    _fsync(tmp)
    os.replace(tmp, path)
  except BaseException:
    if os.path.isfile(tmp):
      os.remove(tmp)
    raise
  _fsync(os.path.dirname(os.path.abspath(path)), directory=True)


def write_bytes(path: PathLike, data: bytes):
  with atomic_path(path) as tmp, open(tmp, "wb") as f:
    f.write(data)


def write_text(path: PathLike, text: str):
  with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
    f.write(text)


def write_json(path: PathLike, obj: Any, sort_keys: bool = True):
  """`obj` as indented JSON with a final newline (`sort_keys=False` keeps
  the dict's own order, e.g. for reports read by people)."""
  write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def read_json(path: PathLike) -> Any:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def copy_file(source: PathLike, destination: PathLike):
  """`shutil.copyfile`, atomically: a kill mid-copy leaves `destination` as
  it was."""
  with atomic_path(destination) as tmp:
    shutil.copyfile(source, tmp)


def save_model(model, path: PathLike):
  """`model.save(path)` for a `.keras` path, atomically."""
  with atomic_path(path, suffix=".keras") as tmp:
    model.save(tmp)


def save_weights(model, path: PathLike):
  """`model.save_weights(path)` for a `.weights.h5` path (weights and
  optimizer state), atomically."""
  with atomic_path(path, suffix=".weights.h5") as tmp:
    model.save_weights(tmp)
