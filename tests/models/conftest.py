"""Shared settings for the model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """Small models run fastest on one thread; on a busy 2-core machine, intra-op threads
    contend and make tiny kernels 100x slower. Restored after each test."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
