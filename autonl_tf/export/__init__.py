"""Shipping trained networks: SavedModel for TF Serving, TFLite for phones,
and classification of image files with either."""

from autonl_tf.export.saved_model import (LABELS_FILE, ExportError, export_saved_model,
                                          saved_model_labels)

__all__ = ["LABELS_FILE", "ExportError", "export_saved_model", "saved_model_labels"]
