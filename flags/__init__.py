"""absl flag definitions shared by the scripts in `tools/`.

Each `define_*_flags()` is called by a driver; library code never reads FLAGS.
`from_config` derives a tool's flags from its config dataclass (names,
defaults, help) and reads the config's fields back from them.
"""
