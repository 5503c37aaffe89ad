"""Frozen-feature evaluation: feature extraction with an on-disk cache, the linear probe, integrity checks."""
