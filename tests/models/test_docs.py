"""The usage example in the package docstring runs as written."""

from __future__ import annotations

import doctest

import rnnkit.models


def test_package_docstring_example_runs():
    results = doctest.testmod(rnnkit.models, optionflags=doctest.ELLIPSIS)
    assert results.attempted >= 8 and results.failed == 0
