"""Benchmark presets (TOML); `--config NAME` finds them by name."""
