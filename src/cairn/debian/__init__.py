"""Debian: suites, slim profiles and the mmdebstrap runner that builds root file systems."""
