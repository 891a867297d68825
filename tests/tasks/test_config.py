"""The run configuration: loading, defaults, overrides, type checks, saving."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.tasks import ConfigError, load_config
from rnnkit.tasks.config import apply_overrides, config_from_dict, read_config_file, save_config


def test_no_config_is_the_default_shakespeare_char_lm():
    config = load_config()
    assert config.task == "language_model" and config.data.dataset == "shakespeare"
    assert config.data.format == "text" and config.model.cell == "lstm"
    assert (config.model.hidden_size, config.model.num_layers) == (256, 2)
    assert config.train.max_time == 3.0  # minutes: a short first run


def test_dataset_implies_format_and_columns(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: classification\ndata: {dataset: names}\n")
    config = load_config(path)
    assert (config.data.format, config.data.text_column, config.data.label_column) == (
        "csv", "name", "label")


def test_toml_and_yaml_give_the_same_config(tmp_path):
    yaml_path, toml_path = tmp_path / "c.yaml", tmp_path / "c.toml"
    yaml_path.write_text("task: seq2seq\ndata: {dataset: dates}\nmodel: {hidden_size: 32}\n"
                         "train: {lr: 0.01, max_steps: 5}\n")
    toml_path.write_text('task = "seq2seq"\n[data]\ndataset = "dates"\n[model]\nhidden_size = 32\n'
                         "[train]\nlr = 0.01\nmax_steps = 5\n")
    assert load_config(yaml_path) == load_config(toml_path)


def test_saved_config_loads_back_identically(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: classification\ndata: {dataset: names}\ntune:\n"
                    "  train.lr: {type: float, low: 0.0001, high: 0.1, log: true}\n")
    config = load_config(path, ["train.max_steps=7", "model.bidirectional=false"])
    saved = save_config(config, tmp_path / "saved.yaml")
    assert config_from_dict(read_config_file(saved)) == config
    assert config.train.max_steps == 7 and config.model.bidirectional is False


def test_int_is_accepted_for_a_float_field_and_converted():
    config = config_from_dict({"train": {"lr": 1, "max_steps": 1}})
    assert isinstance(config.train.lr, float) and config.train.lr == 1.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"data": {"seq_len": "long"}}, "data.seq_len: expected an integer"),
        ({"model": {"dropout": "high"}}, "model.dropout: expected a number"),
        ({"train": {"max_steps": 1, "schedule": "cosin"}}, "did you mean 'cosine'"),
        ({"data": {"format": "jsonl"}}, "data.format: expected one of"),
        ({"tune": {"hidden_size": {"type": "int", "low": 1, "high": 2}}}, "model.hidden_size"),
        ({"tune": {"train.lr": {"type": "float", "low": 0, "high": 1, "log": True}}}, "> 0"),
        ({"tune": {"model.cell": {"type": "categorical"}}}, "non-empty list"),
    ],
)
def test_bad_values_name_the_key(raw, message):
    with pytest.raises((ConfigError, TypeError, ValueError), match=message):
        config_from_dict(raw)


keys = st.sampled_from(["train.lr", "train.max_steps", "model.hidden_size", "data.seq_len"])
scalars = st.one_of(st.integers(-10**6, 10**6), st.booleans(),
                    st.text(alphabet="abcxyz_", min_size=1, max_size=8))


@given(key=keys, value=scalars)
def test_override_value_is_parsed_as_a_yaml_scalar(key, value):
    text = str(value).lower() if isinstance(value, bool) else str(value)
    result = apply_overrides({}, [f"{key}={text}"])
    section, name = key.split(".")
    assert result[section][name] == value


@given(st.dictionaries(st.sampled_from(["lr", "seed"]), st.integers(0, 9)))
def test_overrides_never_modify_their_input(section):
    raw = {"train": dict(section)}
    apply_overrides(raw, ["train.lr=0.5"])
    assert raw == {"train": section}


def test_override_of_a_list_value():
    assert apply_overrides({}, ["data.value_columns=[a, b]"])["data"]["value_columns"] == ["a", "b"]


def test_a_duplicate_yaml_key_is_refused_naming_file_and_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("task: language_model\ntrain:\n  lr: 0.01\n  batch_size: 4\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=rf"^{path}:5: duplicate key 'lr' \(first set on line "
                                          r"3\); remove one of them$"):
        read_config_file(path)
    path.write_text("task: language_model\ntrain: {lr: 0.01}\ntask: tagging\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: duplicate key 'task' \(first set on "
                                          "line 1"):
        read_config_file(path)
    path.write_text("task: language_model\ntrain: {lr: 0.01}\nmodel: {lr: 0.01}\n")
    assert read_config_file(path)["model"] == {"lr": 0.01}  # the same key in two sections


def test_yaml_configs_never_build_python_objects(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("task: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match=r"evil\.yaml:1: not valid YAML"):
        read_config_file(path)
    assert not (tmp_path / "pwned").exists()
