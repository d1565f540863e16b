"""The flags of tools/train.py, tools/search.py and tools/export.py are the
fields of their configs: same names, same defaults, help from the
docstrings; the train and search flags are defined without importing
TensorFlow; the old flag names set the new fields; a search saved under the
old field names resumes."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from autonl_tf.data import DataConfig
from autonl_tf.export.workflow import ExportRequest
from autonl_tf.search.config import SearchConfig
from autonl_tf.training.config import TrainConfig
from flags import common
from flags import export as export_flags
from flags import from_config
from flags import search as search_flags
from flags import train as train_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What each tool's flags module defines: every flag's default, help and enum values.
_DUMP = """
import json, sys
from absl import flags
from flags import {module} as m
m.define_{module}_flags()
out = {{}}
for name, flag in flags.FLAGS._flags().items():
  if flag.help.startswith("Alias for --"):
    continue
  out[name] = dict(default=flag.default, help=flag.help,
                   enum=list(getattr(flag.parser, "enum_values", None) or []))
heavy = sorted(set(m.split(".")[0] for m in sys.modules) & set(["tensorflow", "keras"]))
print(json.dumps(dict(flags=out, heavy=heavy)))
"""

#: Config fields that are deliberately not a flag of the same name and
#: default, and why. DataConfig's are the data flags the tools share
#: (`flags.common.define_data_flags`).
NOT_A_FLAG = {
    TrainConfig: {
        "arch": "a required field; --arch defaults to the autonl-s preset",
        "data": "a nested config: the data flags (DataConfig below)",
        "arch_limits": "--arch_limits name=value pairs, parsed into an ArchLimits",
    },
    ExportRequest: {
        "data": "a nested config: the data flags (DataConfig below)",
        "arch_limits": "--arch_limits name=value pairs, parsed into an ArchLimits",
        "seed": "the seed of the random parity pixels, not a setting of the tool",
    },
    SearchConfig: {
        "space": "a required field; --space defaults to a space for --input_size",
        "data": "a nested config: the data flags (DataConfig below)",
    },
    DataConfig: {
        "dataset": "a required field; --dataset defaults to imagenet2012",
        "data_dir": "--data_dir defaults to $TFDS_DATA_DIR",
        "input_size": "--input_size (shared with the arch's MAC limits)",
        "num_classes": "--num_classes is for synthetic data only",
        "shuffle_buffer": "not a setting of the tools",
        "cache": "not a setting of the tools",
    },
}


@pytest.fixture(scope="module")
def tool_flags():
  """{module (train / search / export): its flags' {name: default, help,
  enum} and the heavy packages (TensorFlow, Keras) defining them imported}."""
  out = {}
  for module in ("train", "search", "export"):
    proc = subprocess.run([sys.executable, "-c", _DUMP.format(module=module)],
                          capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    out[module] = json.loads(proc.stdout.strip().splitlines()[-1])
  return out


def _default(field):
  if field.default is dataclasses.MISSING:
    return None  # a required flag
  return field.default


def test_every_flag_default_is_the_config_default(tool_flags):
  tools = {"train": (train_flags, TrainConfig, DataConfig),
           "search": (search_flags, SearchConfig, DataConfig),
           "export": (export_flags, ExportRequest, DataConfig)}
  for module, (flags_module, *configs) in tools.items():
    defined = tool_flags[module]["flags"]
    for config in configs:
      docs = from_config.field_docs(config)
      for field in dataclasses.fields(config):
        if field.name in NOT_A_FLAG[config]:
          continue
        where = f"{module}: {config.__name__}.{field.name}"
        assert field.name in defined, f"{where} has no flag (nor a reason in NOT_A_FLAG)"
        flag = defined[field.name]
        assert flag["default"] == json.loads(json.dumps(_default(field))), where
        derived_elsewhere = (common.DATA_NOT_DERIVED if config is DataConfig
                             else flags_module.NOT_DERIVED)
        if field.name not in derived_elsewhere:
          assert flag["help"].endswith(docs[field.name]), where
  train, search = tool_flags["train"]["flags"], tool_flags["search"]["flags"]
  assert train["optimizer"]["enum"] == ["rmsprop", "sgd", "adam"]
  assert search["optimizer"]["enum"] == ["rmsprop", "sgd", "adam"]
  assert search["cost"]["enum"] == ["log", "target"]
  assert train["lr_schedule"]["enum"] == ["exponential", "cosine"]
  assert train["precision"]["enum"] == search["precision"]["enum"] == [
      "float32", "mixed_bfloat16", "mixed_float16"]
  assert train["recipe"]["enum"] == ["imagenet", "cifar"]
  assert tool_flags["export"]["flags"]["dataset"]["default"] is None


def test_the_train_and_search_flags_are_defined_without_tensorflow(tool_flags):
  assert tool_flags["train"]["heavy"] == tool_flags["search"]["heavy"] == []


# Parses argv with a tool's flags and prints the config it builds.
_PARSE = """
import dataclasses, json, sys
from absl import flags
from flags import {module} as m
m.define_{module}_flags()
flags.FLAGS(["x"] + sys.argv[1:])
print(json.dumps(dataclasses.asdict(m.{module}_config_from_flags()), default=str))
"""


def _config(module, *argv):
  proc = subprocess.run([sys.executable, "-c", _PARSE.format(module=module), *argv],
                        capture_output=True, text=True, check=True,
                        env=dict(os.environ, PYTHONPATH=ROOT))
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_old_flag_names_set_the_new_fields():
  train = _config("train", "--model_dir=/tmp/x", "--recipe=cifar", "--lr=0.05",
                  "--warmup_epochs=3", "--dropout=0.3", "--drop_connect=0.05", "--ema=0.99")
  assert (train["lr_per_256"], train["lr_warmup_epochs"], train["dropout_rate"],
          train["drop_connect_rate"], train["ema_momentum"]) == (0.05, 3.0, 0.3, 0.05, 0.99)
  assert train["optimizer"] == "sgd"  # the recipe's, where no flag was given
  search = _config("search", "--model_dir=/tmp/x", "--lambda=0.7", "--warmup_epochs=1",
                   "--lr=0.05")
  assert (search["lam"], search["supernet_warmup_epochs"], search["lr_warmup_epochs"],
          search["lr_per_256"]) == (0.7, 1, 1.0, 0.05)
  search = _config("search", "--model_dir=/tmp/x", "--lam=0.7", "--supernet_warmup_epochs=1")
  assert (search["lam"], search["supernet_warmup_epochs"]) == (0.7, 1)


def test_a_search_saved_under_the_old_field_names_resumes(tmp_path):
  from autonl_tf.search import runner
  config = SearchConfig(space="tiny", data=DataConfig("synthetic", input_size=16, num_classes=5),
                        model_dir=str(tmp_path), supernet_warmup_epochs=1)
  saved = json.loads(json.dumps(dataclasses.asdict(config)))
  saved["warmup_epochs"] = saved.pop("supernet_warmup_epochs")
  saved["lr"] = saved.pop("lr_per_256")
  runner._check_resumed_config(saved, config)
  saved["warmup_epochs"] = 2
  with pytest.raises(ValueError, match="supernet_warmup_epochs: 2 -> 1"):
    runner._check_resumed_config(saved, config)
  saved["warmup_epochs"] = 1
  saved["data"]["image_size"] = saved["data"].pop("input_size")  # DataConfig's old name
  runner._check_resumed_config(saved, config)
  saved["data"]["image_size"] = 32
  with pytest.raises(ValueError, match="data.input_size: 32 -> 16"):
    runner._check_resumed_config(saved, config)


def test_a_training_saved_under_the_old_field_names_is_read(tmp_path):
  from autonl_tf import io, run_files
  from autonl_tf.export import workflow
  data = DataConfig("synthetic", input_size=24, num_classes=3, seed=5)
  saved = {"data": dict(dataclasses.asdict(data))}
  saved["data"]["image_size"] = saved["data"].pop("input_size")
  io.write_json(str(tmp_path / run_files.CONFIG), saved)
  assert workflow.training_data_config(str(tmp_path / "final.keras")) == data
  assert run_files.saved_fields(run_files.CONFIG, {"warmup_epochs": 3}) == {"warmup_epochs": 3}
