"""The run configuration: typed sections ``task``, ``data``, ``model``, ``train`` and ``tune``,
read from YAML or TOML, overridden with ``section.key=value`` strings, saved as YAML.

Every key is checked against its dataclass field: an unknown key names the closest valid one,
a wrong type names the field, what it expects and what it got.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import yaml

from rnnkit.annotations import closest, describe, is_int, literal_choices, matches
from rnnkit.errors import ConfigError, FieldError, FieldTypeError
from rnnkit.tasks.yaml_strict import load_yaml
from rnnkit.train import TrainConfig
from rnnkit.train.durable import replace_file

TaskName = Literal[
    "language_model", "classification", "tagging", "seq2seq", "forecasting",
    "conditional_generation",
]
TASK_NAMES: tuple[str, ...] = get_args(TaskName)
SECTIONS = ("task", "data", "model", "train", "tune")


@dataclass
class DataConfig:
    """Where the data is and how to turn it into batches.

    - ``dataset``: a bundled dataset name (``rnnkit datasets list``); ``train``/``valid``/``test``
      default to its files. ``full: true`` uses the full set built by ``rnnkit datasets prepare``.
    - ``train``/``valid``/``test``: file paths (override the dataset's). Without ``valid``, a
      seeded ``valid_fraction`` of the training examples (the tail, for text and series) is held
      out.
    - ``format``: ``auto`` (from the task and file extension), ``text``, ``csv``, ``word_tag``,
      ``conll``, ``conllu``, ``pairs``, ``series``; for many series in one file ``long`` (CSV
      with an ``id_column``, auto for a header holding it) or ``tsf`` (Monash, auto by
      extension).
    - ``tokenizer``: ``auto``, ``char`` or ``word`` (auto: word for classification, else char);
      for seq2seq also ``bpe`` or ``unigram``: a subword model of ``vocab_size`` pieces learnt
      from the training file's sources and targets (Hugging Face ``tokenizers``), stored with
      the run as JSON.
    - ``seq_len``: truncated-BPTT chunk for language models; ``lookback``/``horizon``/``season``
      for forecasting; ``max_length`` truncates token sequences (``null``: keep all).
    - ``normalize`` (forecasting): ``global`` scales by the training mean/std; ``last_value``
      also subtracts each window's last observation, so a trending series whose future leaves
      the training range (e.g. AirPassengers) is forecast relative to its current level;
      ``series`` scales each series by its own training mean/std (a global model over series of
      different sizes); ``window`` scales each window by its own history's mean and standard
      deviation (at least 5% of the training one), as NeuralForecast's temporal scalers and
      RevIN do: level and size come from the window alone.
    - ``past_covariates`` / ``future_covariates`` / ``static_covariates`` (forecasting): columns
      known up to the forecast origin only, known over the horizon too (calendar, holidays,
      planned prices; the file must reach ``horizon`` steps past the last target to forecast),
      and constant per series. They are model inputs, never forecast.
    - ``calibration`` (forecasting): ``conformal`` widens or narrows every interval and
      quantile around the median by one factor, fitted on the validation split so that
      ``interval`` of its values fall inside (split-conformal); ``cross`` fits that factor on
      the validation scores pooled with out-of-sample scores over the training period, from
      ``calibration_folds`` extra models each trained without one block of it
      (cross-conformal, :mod:`rnnkit.tasks.forecast_cross`); ``none`` keeps the model's.
      ``samples``: paths drawn for intervals, quantiles and CRPS without a closed form.
      ``calibration_window`` (``rnnkit backtest`` and ``predict``, default 14): refit the
      conformal factor at each origin on the last N forecasts of its series whose horizons
      have fully elapsed before it (rolling conformal, as Darts' ``cal_length``), so intervals
      follow a change of noise level; until N exist, the validation factor. ``predict``
      refits it on the file it forecasts from, leaving out forecasts of training steps
      (:mod:`rnnkit.tasks.forecast_recalibration`). ``null`` or 0: the validation factor
      throughout. The default comes from the fifth registered coverage check
      (bench/results/forecast_fresh_rolling.md); point forecasts and ``--retrain`` backtests
      have no single interval to refit and ignore it.
      ``calibration_adapt`` gamma (with ``calibration_window``): adaptive conformal inference;
      the level of that refit moves after each ended forecast by gamma times (target
      miscoverage - its miss rate), so bursts of misses widen the next intervals fast.
      ``calibration_per_step`` (with ``calibration_window``): one rolling factor per lead
      time, each fitted on the window's scores at that lead (errors grow with the lead).
    - ``tag_scheme`` (tagging): ``auto`` detects chunk tags (IOB1, IOB2/BIO, BIOES, BMES) and
      then reports entity-level scores; ``none`` treats tags as plain labels; ``iob1``,
      ``iob2``, ``bioes`` or ``bmes`` converts every file's tags to that scheme.
    - ``eval_limit``: score only the first N validation/test examples (tokens for language
      models, windows for series) — quick checks on large held-out sets.
    """

    dataset: str | None = None
    full: bool = False
    cache_dir: str | None = None
    train: str | None = None
    valid: str | None = None
    test: str | None = None
    format: Literal["auto", "text", "csv", "word_tag", "conll", "conllu", "pairs", "series",
                    "long", "tsf"] = "auto"
    on_error: Literal["raise", "skip"] = "raise"
    tag_scheme: Literal["auto", "none", "iob1", "iob2", "bioes", "bmes"] = "auto"
    tokenizer: Literal["auto", "char", "word", "bpe", "unigram"] = "auto"
    vocab_size: int = 1000  # bpe/unigram: subword pieces to learn
    lowercase: bool = False
    text_column: str = "text"
    label_column: str = "label"
    delimiter: str | None = None
    time_column: str | None = None
    value_columns: list[str] | None = None
    target_columns: list[str] | None = None
    id_column: str = "series_id"
    past_covariates: list[str] | None = None
    future_covariates: list[str] | None = None
    static_covariates: list[str] | None = None
    min_freq: int = 1
    max_vocab: int | None = None
    max_length: int | None = None
    valid_fraction: float = 0.1
    eval_limit: int | None = None
    seq_len: int = 128
    lookback: int = 24
    horizon: int = 12
    season: int = 1
    interval: float = 0.9
    calibration: Literal["none", "conformal", "cross"] = "conformal"  # forecasting
    calibration_folds: int = 4  # forecasting, calibration: cross: held-out training blocks
    samples: int = 500  # forecasting: sample paths where intervals have no closed form
    calibration_window: int | None = 14  # forecasting backtests, predict: rolling conformal
    calibration_adapt: float | None = None  # forecasting backtests, predict: ACI step gamma
    calibration_per_step: bool = False  # forecasting backtests, predict: a factor per lead
    normalize: Literal["global", "last_value", "series", "window"] = "global"


@dataclass
class ModelConfig:
    """The network. Common fields apply to every task; the others to the tasks named in the
    comment (``null`` keeps the model's own default). See :mod:`rnnkit.models` for meanings."""

    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    embedding_size: int | None = None
    bidirectional: bool | None = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    layer_norm: bool = False
    tie_embeddings: bool | None = None  # language_model
    proj_size: int | None = None  # language_model
    pooling: Literal["last", "mean", "max"] | None = None  # classification
    head_hidden_size: int | None = None  # classification, tagging
    crf: bool | None = None  # tagging: a CRF output layer
    char_features: Literal["none", "cnn", "lstm"] | None = None  # tagging
    pretrained_vectors: str | None = None  # tagging: word2vec/GloVe/fastText text file
    freeze_embeddings: bool | None = None  # tagging
    attention: Literal["none", "bahdanau", "luong_dot", "luong_general"] | None = None  # seq2seq
    teacher_forcing_start: float | None = None  # seq2seq
    teacher_forcing_floor: float | None = None  # seq2seq
    teacher_forcing_decay_steps: int | None = None  # seq2seq
    beam_size: int = 1  # seq2seq decoding (1: greedy)
    length_penalty: float = 0.0  # seq2seq beam search
    strategy: Literal["direct", "autoregressive"] | None = None  # forecasting
    teacher_forcing: bool | None = None  # forecasting, autoregressive (model default: true)
    # forecasting, direct: per_step reads horizon step k from the encoder output horizon steps
    # before it (one layer shared by the steps); final_state (the default) from the last state
    head: Literal["final_state", "per_step"] | None = None
    gaussian: bool | None = None  # forecasting (same as likelihood: gaussian)
    likelihood: Literal["none", "gaussian", "student_t", "negative_binomial",
                        "quantile"] | None = None  # forecasting
    quantiles: list[float] | None = None  # forecasting, likelihood: quantile
    # forecasting: seasonal_naive forecasts a correction to the seasonal-naive forecast
    residual: Literal["none", "seasonal_naive"] | None = None
    condition_mode: Literal["init", "input", "both"] | None = None  # conditional_generation
    condition_embedding_size: int | None = None  # conditional_generation


@dataclass
class TrainSection(TrainConfig):
    """:class:`rnnkit.train.TrainConfig` plus the batch size (which the data layer uses)."""

    batch_size: int = 32
    # The validation metric that picks `best` and drives early stopping and plateau schedules
    # (`valid_bleu` or `bleu`; null: the task's default), and whether lower or higher is better
    # (null: from the name, `min` for losses and errors). See rnnkit.tasks.monitor.
    monitor: str | None = None
    monitor_mode: Literal["min", "max"] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not is_int(self.batch_size) or self.batch_size < 1:
            raise ConfigError(
                f"train.batch_size: expected an integer >= 1, got {self.batch_size!r}"
            )

    def trainer_config(self) -> TrainConfig:
        """The plain :class:`TrainConfig` (without ``batch_size``)."""
        values = {f.name: getattr(self, f.name) for f in fields(TrainConfig)}
        return TrainConfig(**values)


@dataclass
class ParamSpec:
    """One tuned hyper-parameter: ``int``/``float`` in ``[low, high]`` (``log`` scale, ``step``)
    or ``categorical`` over ``choices``."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None


@dataclass
class TuneConfig:
    """Search space and method for ``rnnkit tune``: ``params`` maps ``section.key`` to a
    :class:`ParamSpec`; the keys without a dot choose how to search.

    - ``strategy``: ``tpe`` (Bayesian, Optuna's default), ``random``, or ``grid`` (every
      combination of the declared values, as scikit-learn's GridSearchCV: categorical choices,
      ints and floats with a ``step``).
    - ``pruner``: what stops poor trials early from their per-evaluation validation metric:
      ``median``, ``asha`` (asynchronous successive halving), ``hyperband``, ``pbt``
      (population-based training; Ray engine only, tunes ``train.*`` keys) or ``none``.
    - ``seed``: the sampler's seed (``null``: a fresh one each time).
    - ``perturbation_interval``: PBT, evaluations between exploit/explore steps.
    """

    params: dict[str, ParamSpec] = field(default_factory=dict)
    strategy: Literal["tpe", "random", "grid"] = "tpe"
    pruner: Literal["median", "asha", "hyperband", "pbt", "none"] = "median"
    seed: int | None = None
    perturbation_interval: int = 2


@dataclass
class RunConfig:
    """A whole run: the task, its data, model and training settings, optional search space."""

    task: TaskName = "language_model"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainSection = field(default_factory=lambda: TrainSection(max_time=5.0))
    tune: TuneConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML/JSON-able) that :func:`config_from_dict` turns back into this."""
        data = asdict(self)
        data["train"]["betas"] = list(self.train.betas)
        if self.tune is not None:
            data["tune"] = {**{k: v for k, v in data["tune"].items() if k != "params"},
                            **data["tune"]["params"]}
        return data


# ------------------------------------------------------------------------------- type checks
def build_section(cls: type, values: Any, section: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values``, checking keys and types by annotation."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{section}: expected a mapping of settings, got {values!r:.80}")
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"unknown config key {section}.{key}" + closest(key, known)
                + f"; valid keys of {section}: {', '.join(known)}"
            )
        if not matches(value, hints[key]):
            choices = literal_choices(hints[key])
            hint = closest(value, choices) if isinstance(value, str) and choices else ""
            # a misspelt choice is a bad value; anything else is the wrong type
            kind = FieldError if choices and isinstance(value, str) else FieldTypeError
            raise kind(section, key, f"expected {describe(hints[key])}, got {value!r} "
                                     f"({type(value).__name__})" + hint)
    converted = {k: float(v) if hints[k] is float and is_int(v) else v for k, v in values.items()}
    try:
        return cls(**converted)
    except FieldError as error:  # TrainConfig.lr is train.lr here
        raise error.in_section(section) from error


TUNE_SETTINGS = ("strategy", "pruner", "seed", "perturbation_interval")


def _tune_section(values: Any) -> TuneConfig | None:
    if values is None:
        return None
    if not isinstance(values, dict):
        raise ConfigError(
            f"tune: expected a mapping of section.key -> search space, got {values!r}"
        )
    params, settings = {}, {}
    for key, spec in values.items():
        section, _, name = str(key).partition(".")
        if key in TUNE_SETTINGS:
            settings[key] = spec
            continue
        if section not in ("data", "model", "train") or not name:
            raise ConfigError(
                f"tune.{key}: expected a key like model.hidden_size or train.lr, or one of "
                f"{', '.join(TUNE_SETTINGS)}, got {key!r}" + closest(str(key), TUNE_SETTINGS)
            )
        if isinstance(spec, list):  # model.hidden_size: [64, 128, 256] is a categorical
            spec = {"type": "categorical", "choices": spec}
        params[key] = build_section(ParamSpec, spec, f"tune.{key}")
        _check_param(key, params[key])
    tune = build_section(TuneConfig, settings, "tune")
    if tune.perturbation_interval < 1:
        raise ConfigError("tune.perturbation_interval: expected an integer >= 1, got "
                          f"{tune.perturbation_interval}")
    tune.params = params
    return tune


def _check_param(key: str, spec: ParamSpec) -> None:
    if spec.type == "categorical":
        if not spec.choices:
            raise ConfigError(f"tune.{key}.choices: expected a non-empty list for categorical")
        return
    if spec.low is None or spec.high is None or not spec.low < spec.high:
        raise ConfigError(
            f"tune.{key}: expected low < high for type {spec.type}, got {spec.low}, {spec.high}"
        )
    if spec.log and spec.low <= 0:
        raise ConfigError(f"tune.{key}.low: expected > 0 with log: true, got {spec.low}")


def config_from_dict(raw: dict[str, Any], defaults: dict[str, Any] | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from a parsed file; ``defaults`` (per-section dicts) fill
    keys the file leaves out (the task's sensible defaults)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping with sections {', '.join(SECTIONS)}")
    for key in raw:
        if key not in SECTIONS:
            raise ConfigError(
                f"unknown config section {key!r}" + closest(key, SECTIONS)
                + f"; valid sections: {', '.join(SECTIONS)}"
            )
    task = raw.get("task", "language_model")
    if task not in TASK_NAMES:
        raise ConfigError(
            f"task: expected one of {', '.join(TASK_NAMES)}, got {task!r}"
            + closest(str(task), TASK_NAMES)
        )
    merged = {s: {**(defaults or {}).get(s, {}), **(raw.get(s) or {})}
              for s in ("data", "model", "train")}
    if not any(merged["train"].get(k) for k in ("max_steps", "max_epochs", "max_time")):
        merged["train"]["max_time"] = 5.0
    return RunConfig(
        task=task,
        data=build_section(DataConfig, merged["data"], "data"),
        model=build_section(ModelConfig, merged["model"], "model"),
        train=build_section(TrainSection, merged["train"], "train"),
        tune=_tune_section(raw.get("tune")),
    )


# -------------------------------------------------------------------------------- files
def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at "
                          f"offset {error.start}); save the config as UTF-8") from None
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            return tomllib.loads(text)
        data = load_yaml(text, path)  # safe, and a duplicate key is an error naming its line
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    except ConfigError:  # a duplicate key, already naming file and line
        raise
    except ValueError as error:  # tomllib.TOMLDecodeError
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    check_size(data, str(path))
    return data


MAX_CONFIG_VALUES = 100_000


def check_size(value: Any, where: str) -> None:
    """Refuse a config whose values, with YAML aliases expanded, number more than
    ``MAX_CONFIG_VALUES``: nested aliases ("billion laughs") parse in a few bytes but make every
    later walk (type checks, error messages, saving) take exponential time and memory."""
    budget, stack = MAX_CONFIG_VALUES, [value]
    while stack:
        item = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(f"{where}: the config expands to more than {MAX_CONFIG_VALUES} "
                              "values (nested YAML aliases?); write the values out")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``section.key=value`` set (value parsed as a YAML
    scalar, so ``0.001``, ``true``, ``null``, ``[a, b]`` work; types are checked later)."""
    result = copy.deepcopy(raw)
    for item in overrides:
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.lr=0.001")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        check_size(value, f"--set {key}")
        if key == "task":
            result["task"] = value
            continue
        section, dot, name = key.partition(".")
        if section not in SECTIONS or not dot or not name:
            raise ConfigError(
                f"--set {item!r}: expected section.key=value with section one of "
                f"{', '.join(SECTIONS)}" + closest(section, SECTIONS)
            )
        if not isinstance(result.get(section) or {}, dict):
            raise ConfigError(f"--set {item!r}: section {section!r} is not a mapping")
        result[section] = {**(result.get(section) or {}), name: value}
    return result


def save_config(config: RunConfig, path: str | Path) -> Path:
    """Write the resolved configuration as YAML (every key, defaults included)."""
    path = Path(path)
    text = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
    return replace_file(path, text, "config")  # atomic; a full disk names the path
