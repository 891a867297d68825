"""`rnnkit predict --calibration-window N`: refits the interval factor on the input's last N
ended forecasts whatever the run's config says (0: the validation factor)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.tasks.test_forecast_recalibration import _history, run  # noqa: F401 (fixture)

from rnnkit.tasks.forecast_recalibration import latest_factor

pytestmark = pytest.mark.usefixtures("single_thread")


def test_the_cli_window_overrides_the_runs(run, cli):  # noqa: F811 (the fixture)
    loaded, root = run
    path = _history(root, 76)
    run_dir = root / "run"

    def upper_widths(*flags: str) -> np.ndarray:
        result = cli("predict", run_dir, "--input", path, "--format", "csv", *flags)
        assert result.exit_code == 0, result.output
        lines = [line.split(",") for line in result.stdout.strip().splitlines()]
        columns = {name: i for i, name in enumerate(lines[0])}
        return np.asarray([float(r[columns["value_upper"]]) - float(r[columns["value"]])
                           for r in lines[1:]])

    series = loaded.task.read(path)
    rolled, fixed = upper_widths(), upper_widths("--calibration-window", "0")
    wider = upper_widths("--calibration-window", "12")
    validation = loaded.task.artifacts["conformal_factor"]
    assert rolled / fixed == pytest.approx(
        latest_factor(loaded.task, loaded.model, series)[0] / validation, rel=1e-4)
    assert wider / fixed == pytest.approx(
        latest_factor(loaded.task, loaded.model, series, 12)[0] / validation, rel=1e-4)

