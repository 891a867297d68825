"""``model.teacher_forcing`` (forecasting): typed in the run config, passed to the forecaster,
and refused where it does not apply."""

from __future__ import annotations

import numpy as np
import pytest
from tests.tasks.forecast_files import write_rows

from rnnkit import tasks
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.forecasting import ForecastingTask
from rnnkit.tasks.registry import reject_foreign_fields


def _model(tmp_path, overrides: list[str]):
    values = np.sin(np.arange(80) / 3)
    path = write_rows(tmp_path / "s.csv", ["t", "v"], [[t, f"{v:.4f}"] for t, v in
                                                        enumerate(values)])
    config = tasks.load_config(None, ["task=forecasting", f"data.train={path}",
                                      "data.time_column=t", "data.format=series",
                                      "data.lookback=6", "data.horizon=2",
                                      "model.hidden_size=4", "model.strategy=autoregressive",
                                      *overrides])
    task = ForecastingTask.fit(config, path)
    task.fit_on_split(*task.hold_out(task.read(path)))
    return task.build_model()


@pytest.mark.parametrize(("overrides", "expected"), [
    ([], True), (["model.teacher_forcing=false"], False), (["model.teacher_forcing=true"], True)])
def test_teacher_forcing_reaches_the_forecaster(tmp_path, overrides, expected):
    assert _model(tmp_path, overrides).config.teacher_forcing is expected


def test_teacher_forcing_of_the_wrong_type_is_refused_by_name():
    with pytest.raises(ValueError, match=r"model\.teacher_forcing: expected true or false or "
                                         r"null, got 'sometimes'"):
        tasks.load_config(None, ["task=forecasting", "model.teacher_forcing=sometimes"])


def test_teacher_forcing_does_not_apply_to_other_tasks():
    config = tasks.load_config(None, ["task=classification", "model.teacher_forcing=false"])
    with pytest.raises(ConfigError, match=r"model\.teacher_forcing does not apply to task "
                                          r"classification \(it applies to forecasting\)"):
        reject_foreign_fields(config)
