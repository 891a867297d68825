"""Suite-wide settings: property tests draw the same examples on every run (CI is reproducible);
set HYPOTHESIS_PROFILE=explore to search with fresh random examples."""

from __future__ import annotations

import os

from hypothesis import settings

# Before any test runs a torch product: rnnkit puts MKL in strict CNR mode at import, and MKL
# fixes its mode at its first call (see rnnkit.reproducibility).
import rnnkit  # noqa: F401

settings.register_profile("deterministic", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
