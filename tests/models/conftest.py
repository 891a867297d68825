"""Shared settings for the model tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _single_thread(single_thread):
    """Every test here runs on one thread (the root conftest's ``single_thread``)."""
