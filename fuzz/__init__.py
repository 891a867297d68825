"""Fuzz targets and the atheris harness (``make fuzz``); the corpus is replayed by the tests."""
