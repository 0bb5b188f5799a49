"""cairn: build, measure and check a family of slim Debian container images."""

__version__ = "0.1.0"
