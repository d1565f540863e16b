"""LiteRT latency of pieces and networks on this machine, and latency tables.

* `keys`: `Piece`, a table entry's typed key (its `key` text names the
  entry in a table file), and `arch_pieces`, the pieces of a network;
* `timing`: pieces and networks built as TFLite models and timed with the
  LiteRT interpreter (fastest invoke, over passes until the two fastest
  agree, with a contention guard), and the machine they were timed on;
* `table`: `LatencyTable` (the file, its settings, predictions) and its
  build (`build_table`: the pieces, and the whole networks that calibrate
  and check it, timed in the same passes).

The names below are importable from the package (`latency.LatencyTable`).
The dependency goes one way: `autonl_tf.search` imports this package
(`search.pieces` decomposes a search space into `Piece`s, `search.cost`
prices their entries); nothing here imports `autonl_tf.search`
(tests/test_imports.py checks it). Pure Python and NumPy at import;
TensorFlow and LiteRT are imported by the functions that build or time.
"""

from autonl_tf.latency.keys import OVERHEAD, OVERHEAD_PIECE, Piece, arch_pieces, block_piece
from autonl_tf.latency.keys import stem_piece
from autonl_tf.latency.table import (CALIBRATION_RULE, STATISTIC, TABLE_FORMAT, LatencyTable,
                                     build_table, table_settings)
from autonl_tf.latency.timing import (CONTENTION_RETRIES, CONTENTION_WINDOW_S, SETTLE_MAX_PASSES,
                                      SETTLE_RULE, SETTLE_TOLERANCE, add_pass, arch_tflite,
                                      contended, cpu_model, machine, model_tflite, others_cores,
                                      others_load, piece_tflite, settled, time_arch,
                                      time_in_passes, time_passes, time_tflite)

__all__ = ["OVERHEAD", "OVERHEAD_PIECE", "Piece", "arch_pieces", "block_piece", "stem_piece",
           "CALIBRATION_RULE", "STATISTIC", "TABLE_FORMAT", "LatencyTable", "build_table",
           "table_settings", "CONTENTION_RETRIES", "CONTENTION_WINDOW_S", "SETTLE_MAX_PASSES",
           "SETTLE_RULE", "SETTLE_TOLERANCE", "add_pass", "arch_tflite", "contended",
           "cpu_model", "machine", "model_tflite", "others_cores", "others_load",
           "piece_tflite", "settled", "time_arch", "time_in_passes", "time_passes",
           "time_tflite"]
