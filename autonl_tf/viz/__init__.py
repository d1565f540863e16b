"""Pictures of architectures, of search runs and of studies.

* `plot_arch` (`arch_plot`): a network as a row of blocks, in the style of
  the AutoNL paper's figures.
* `read_search_log` / `plot_search` (`search_plot`): a search's
  `search_log.csv` over the epochs.
* `plot_accuracy_vs_macs` (`study_plot`): a study's networks, accuracy
  against cost, one colour per group.

Pure Python + numpy + matplotlib (no TensorFlow, no pyplot: figures are
`matplotlib.figure.Figure` objects rendered with Agg, so importing this
package never changes the caller's matplotlib backend).
"""

from autonl_tf.viz.arch_plot import plot_arch
from autonl_tf.viz.figures import png_size
from autonl_tf.viz.search_plot import (DECISION_SEPARATOR, LOG_FILE, MAC_COLUMN, STEP_COLUMN,
                                       SearchLog, plot_search, read_search_log)
from autonl_tf.viz.study_plot import off_scale_floor, plot_accuracy_vs_macs

__all__ = ["plot_arch", "read_search_log", "plot_search", "plot_accuracy_vs_macs", "off_scale_floor",
           "SearchLog", "png_size", "LOG_FILE", "STEP_COLUMN", "MAC_COLUMN", "DECISION_SEPARATOR"]
