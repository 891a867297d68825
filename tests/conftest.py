"""Suite-wide settings: property tests draw the same examples on every run (CI is reproducible);
set HYPOTHESIS_PROFILE=explore to search with fresh random examples."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import settings

# Before any test runs a torch product: rnnkit puts MKL in strict CNR mode at import, and MKL
# fixes its mode at its first call (see rnnkit.reproducibility).
import rnnkit  # noqa: F401

settings.register_profile("deterministic", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture
def single_thread():
    """Tiny models run fastest (and deterministically) on one thread: on a busy 2-core machine
    intra-op threads contend and make tiny kernels far slower. Restored after the test."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
