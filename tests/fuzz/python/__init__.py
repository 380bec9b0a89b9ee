"""Fuzzing pywg's Python parsers with hypothesis (tests/fuzz/python/README.md)."""
