"""The soak test: hours of live analysis under hostile clients and corrupt input (see runner)."""

from streamser.soak.runner import SoakConfig, main, run_soak

__all__ = ["SoakConfig", "main", "run_soak"]
