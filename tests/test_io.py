"""autonl_tf.io: files written whole or not at all (pure Python)."""

import os
import subprocess
import sys

import pytest

from autonl_tf import io


def test_json_round_trip_and_format(tmp_path):
  path = tmp_path / "m.json"
  io.write_json(path, {"b": 1, "a": [1.5, None]})
  assert path.read_text() == '{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": 1\n}\n'
  assert io.read_json(path) == {"a": [1.5, None], "b": 1}
  io.write_json(path, {"b": 1, "a": 2}, sort_keys=False)
  assert list(io.read_json(path)) == ["b", "a"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
  path = tmp_path / "arch.txt"
  io.write_text(path, "old\n")
  with pytest.raises(RuntimeError, match="killed"):
    with io.atomic_path(path) as tmp:
      with open(tmp, "w") as f:
        f.write("half of the new")
      raise RuntimeError("killed")
  assert path.read_text() == "old\n"
  assert os.listdir(tmp_path) == ["arch.txt"]


def test_temporary_names_are_hidden_tagged_and_keep_the_writers_ending(tmp_path):
  pid = os.getpid()
  assert io.temporary_name(tmp_path / "final.keras", ".keras") == str(
      tmp_path / f".final.tmp-{pid}.keras")
  assert io.temporary_name("model_int8.tflite") == f".model_int8.tflite.tmp-{pid}"
  with pytest.raises(ValueError, match="does not end with .weights.h5"):
    io.temporary_name("epoch_001.h5", ".weights.h5")


def test_copy_file_and_bytes(tmp_path):
  io.write_bytes(tmp_path / "a.bin", b"\x00\x01")
  io.copy_file(tmp_path / "a.bin", tmp_path / "b.bin")
  assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
  assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.bin"]


def test_stale_temporaries_of_killed_writers_are_removed_and_live_ones_kept(tmp_path):
  gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  dead, live = int(gone.stdout), os.getpid()
  names = {f".latest.tmp-{dead}.weights.h5": "file", f".log.csv.tmp-{live}": "file",
           "latest.weights.h5": "file", ".hidden": "file", f".1.tmp-{dead}-x7q": "dir"}
  for name, kind in names.items():
    if kind == "dir":
      os.makedirs(tmp_path / name / "variables")
    else:
      (tmp_path / name).write_bytes(b"part")
  assert io.remove_stale_temporaries(tmp_path) == [f".1.tmp-{dead}-x7q",
                                                  f".latest.tmp-{dead}.weights.h5"]
  assert sorted(os.listdir(tmp_path)) == sorted([f".log.csv.tmp-{live}", "latest.weights.h5",
                                                 ".hidden"])
  assert io.remove_stale_temporaries(tmp_path / "missing") == []
