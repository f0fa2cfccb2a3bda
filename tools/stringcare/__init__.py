"""StringCare host tooling: the `stringcare` command, simulator, deploy, benchmarks."""

from shared.version import VERSION as __version__

__all__ = ["__version__"]
