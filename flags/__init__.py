"""absl flag definitions shared by the scripts in `tools/`.

Each `define_*_flags()` is called by a driver; library code never reads FLAGS.
"""
