"""Errors the `firsthand` command reports in one line (no Beam import, for Beam-free commands)."""


class ConfigError(ValueError):
    """A configuration the pipeline refuses, with what to change."""
