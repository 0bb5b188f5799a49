"""Measuring images: read layers as streams, then size, categories, packages, waste."""
