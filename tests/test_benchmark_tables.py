"""benchmarks/_common.table: the tables the benchmarks print and
docs/RESULTS.md pastes."""

import os
import re
import sys

import pytest
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import _common  # noqa: E402  (the benchmarks' shared module, not a package)


@pytest.fixture
def output_format():
  """Sets --format as a benchmark's command line would; leaves FLAGS as found."""
  parsed = flags.FLAGS.is_parsed()
  if not parsed:
    flags.FLAGS.mark_as_parsed()
  before = flags.FLAGS["format"].value

  def use(name):
    flags.FLAGS["format"].value = name
  yield use
  flags.FLAGS["format"].value = before
  if not parsed:
    flags.FLAGS.unparse_flags()


def test_markdown_table_escapes_a_pipe_in_a_cell(output_format, capsys):
  output_format("markdown")
  _common.table(["run", "max |logit|"], [["a|b", 5.43]])
  lines = capsys.readouterr().out.splitlines()
  assert lines == ["| run | max \\|logit\\| |", "|:---|---:|", "| a\\|b | 5.43 |"]
  # Split on the unescaped pipes, every row has the header's two cells.
  for line in lines:
    assert len(re.split(r"(?<!\\)\|", line)) == 4, line


def test_text_table_is_aligned_and_unescaped(output_format, capsys):
  output_format("text")
  _common.table(["run", "max |logit|"], [["hand", 5.43], ["random-1", 12.5]])
  assert capsys.readouterr().out.splitlines() == [
      "run       max |logit|",
      "--------  -----------",
      "hand             5.43",
      "random-1         12.5"]
