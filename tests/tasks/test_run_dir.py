"""What may be trained into, and what --overwrite deletes: only what rnnkit wrote, by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnkit.tasks.errors import RunDirError
from rnnkit.tasks.run_dir import (
    MARKER_FILE,
    check_run_dir,
    clear_run_files,
    is_marked,
    write_marker,
)
from rnnkit.tasks.run_lock import LOCK_FILE


def make_files(root: Path, *names: str) -> Path:
    """Create each ``name`` (a relative path) under ``root`` holding its own name."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    return root


RUN_FILES = ("config.yaml", "task.json", "metrics.csv", "summary.json",
             "checkpoints/last/model.safetensors", "checkpoints/best/metadata.json",
             "checkpoints/.last.tmp-x1y2/model.safetensors",
             "tensorboard/events.out.tfevents.1700000000.host.1.0")


def test_a_project_folder_with_a_config_yaml_is_refused_untouched(tmp_path):
    project = make_files(tmp_path / "proj", "config.yaml", "src/thesis.tex")
    for overwrite, verb in ((True, "overwrite it"), (False, "train into it")):
        with pytest.raises(RunDirError) as refused:
            check_run_dir(project, resume=False, overwrite=overwrite)
        assert str(refused.value) == (
            f"{project} already exists and is not an rnnkit run (no {MARKER_FILE} marker, no "
            f"task.json, and it holds src, which rnnkit does not write); refusing to {verb}: "
            "choose another run_dir")
    assert (project / "src/thesis.tex").read_text() == "src/thesis.tex"
    assert sorted(p.name for p in project.iterdir()) == ["config.yaml", "src"]


def test_a_marked_run_is_cleared_by_name_and_other_files_are_kept(tmp_path):
    run = make_files(tmp_path / "run", *RUN_FILES, "notes.txt", "checkpoints/mine.txt",
                     "tensorboard/plot.png", f"{LOCK_FILE}.123.456")
    write_marker(run)
    check_run_dir(run, resume=False, overwrite=True)
    assert clear_run_files(run) == ["checkpoints/mine.txt", "notes.txt", "tensorboard/plot.png"]
    left = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert left == ["checkpoints/mine.txt", "notes.txt", "tensorboard/plot.png"]


def test_a_marked_run_holding_only_rnnkit_files_is_emptied(tmp_path):
    run = make_files(tmp_path / "run", *RUN_FILES)
    write_marker(run)
    (run / LOCK_FILE).write_text("{}")  # the live process's own lock: not cleared
    assert clear_run_files(run) == []
    assert [p.name for p in run.iterdir()] == [LOCK_FILE]


def test_an_unmarked_run_of_an_older_rnnkit_is_replaceable_when_it_holds_only_its_files(tmp_path):
    run = make_files(tmp_path / "old", *RUN_FILES)
    check_run_dir(run, resume=False, overwrite=True)
    assert clear_run_files(run) == []
    assert list(run.iterdir()) == []


@pytest.mark.parametrize(("extra", "named"), [("notes.txt", "notes.txt"),
                                              ("checkpoints/mine.txt", "checkpoints/mine.txt"),
                                              ("tensorboard/plot.png", "tensorboard/plot.png")])
def test_an_unmarked_run_holding_anything_else_is_refused(tmp_path, extra, named):
    run = make_files(tmp_path / "old", *RUN_FILES, extra)
    with pytest.raises(RunDirError, match=f"no {MARKER_FILE} marker, and it holds {named},"):
        check_run_dir(run, resume=False, overwrite=True)


def test_an_unmarked_folder_without_task_json_is_not_a_run(tmp_path):
    run = make_files(tmp_path / "cfg", "config.yaml")
    with pytest.raises(RunDirError, match=f"no {MARKER_FILE} marker, no task.json\\)"):
        check_run_dir(run, resume=False, overwrite=True)


def test_a_run_with_a_checkpoint_needs_resume_or_overwrite(tmp_path):
    run = make_files(tmp_path / "run", *RUN_FILES)
    write_marker(run)
    with pytest.raises(RunDirError, match=r"already exists and holds a trained run \(made "
                                          r".*\); pass resume=True to continue that run, "
                                          "overwrite=True to replace it, or choose another "
                                          "run_dir for a new one"):
        check_run_dir(run, resume=False, overwrite=False)
    check_run_dir(run, resume=True, overwrite=False)
    with pytest.raises(RunDirError, match="resume=True and overwrite=True exclude each other"):
        check_run_dir(run, resume=True, overwrite=True)


def test_a_run_stopped_before_its_first_checkpoint_restarts_without_overwrite(tmp_path):
    run = make_files(tmp_path / "run", "config.yaml", "task.json", "metrics.csv")
    write_marker(run)
    check_run_dir(run, resume=False, overwrite=False)  # nothing to lose: no refusal
    with pytest.raises(RunDirError, match=r"nothing to resume \(no checkpoints/last or best\); "
                                          "train without resume=True to start it"):
        check_run_dir(run, resume=True, overwrite=False)


def test_new_empty_and_lock_only_directories_are_fresh(tmp_path):
    check_run_dir(tmp_path / "absent", resume=False, overwrite=False)
    check_run_dir(tmp_path, resume=False, overwrite=False)
    (tmp_path / LOCK_FILE).write_text("{}")
    check_run_dir(tmp_path, resume=False, overwrite=False)
    make_files(tmp_path, "a_file")
    with pytest.raises(RunDirError, match="exists and is not a directory"):
        check_run_dir(tmp_path / "a_file", resume=False, overwrite=True)


def test_the_marker_records_the_version_and_is_kept(tmp_path):
    import rnnkit

    write_marker(tmp_path)
    record = json.loads((tmp_path / MARKER_FILE).read_text())
    assert record["rnnkit_version"] == rnnkit.__version__ and record["created"][:2] == "20"
    write_marker(tmp_path)
    assert json.loads((tmp_path / MARKER_FILE).read_text()) == record
    (tmp_path / MARKER_FILE).write_text("not json")
    assert not is_marked(tmp_path)
