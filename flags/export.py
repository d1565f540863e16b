"""Flags of tools/export.py: one per `ExportRequest` field (`flags.from_config`)."""

from absl import flags

from autonl_tf.export import tflite
from autonl_tf.export.workflow import ExportRequest
from flags import common
from flags import from_config

FLAGS = flags.FLAGS

#: `ExportRequest` fields with flags of their own: `arch`, `input_size`,
#: `num_classes` and `arch_limits` (`common.define_arch_flags`), `data`
#: (`common.define_data_flags`), `tflite` (a list, below); `seed` is not a
#: setting of the tool.
NOT_DERIVED = ("arch", "input_size", "num_classes", "arch_limits", "data", "tflite", "seed")


def define_export_flags():
  common.define_arch_flags(default_arch=None)
  common.define_data_flags()
  FLAGS.set_default("dataset", None)
  flags.DEFINE_list("tflite", [], "Write TFLite models instead of the SavedModel: any of "
                    f"{', '.join(tflite.VARIANTS)} (int8 needs --dataset).")
  from_config.define(ExportRequest, skip=NOT_DERIVED, module_name=__name__)


def export_request_from_flags():
  data = common.data_config_from_flags(common.synthetic_classes()) if FLAGS.dataset else None
  return ExportRequest(
      data=data, arch=FLAGS.arch, input_size=FLAGS.input_size, num_classes=FLAGS.num_classes,
      arch_limits=common.arch_limits_from_flags(), tflite=FLAGS.tflite,
      **from_config.values(ExportRequest, NOT_DERIVED))
