"""Output distributions of :class:`~rnnkit.models.Forecaster`: from the head's raw outputs to a
predictive distribution with a point forecast, a training loss, quantiles and samples.

Every :class:`Predictive` speaks the model's *scaled* units (``(value - loc) / scale`` with the
targets' training mean/std), so the forecaster unscales all of its outputs the same way. Raw
outputs ``(batch, steps, targets * size)`` are ``size`` consecutive chunks of ``targets``
values (mean first, then spread), the layout Gaussian checkpoints have always had.

- ``none``: the point forecast, trained by MSE.
- ``gaussian``: mean and softplus std; NLL.
- ``student_t``: location, softplus scale and degrees of freedom ``2 + softplus``: heavy tails.
- ``negative_binomial``: counts; mean ``mu`` and dispersion ``alpha`` (variance ``mu + alpha
  mu²``) in original units, as DeepAR (Salinas et al. 2020) parametrises it.
- ``quantile``: one output per quantile level, trained by the pinball loss averaged over levels
  (MQ-RNN, Wen et al. 2017); crossing quantiles are sorted.
"""

from __future__ import annotations

import bisect
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Likelihood = Literal["none", "gaussian", "student_t", "negative_binomial", "quantile"]
PARAMETERS = {"none": 1, "gaussian": 2, "student_t": 3, "negative_binomial": 2}
MIN_STD = 1e-4  # keeps the NLL finite when a series is locally flat


def parameter_count(likelihood: str, quantiles: list[float] | None) -> int:
    """Raw outputs per forecast value."""
    return len(quantiles or ()) if likelihood == "quantile" else PARAMETERS[likelihood]


class Predictive:
    """A predictive distribution over values ``(batch, steps, targets)`` in scaled units."""

    point: Tensor  # the value fed back by autoregressive models and reported as the forecast
    std: Tensor | None = None  # set for Gaussian models only (closed-form CRPS, export)
    analytic: bool = False  # icdf is exact (no samples needed for quantiles)

    def loss(self, target: Tensor) -> Tensor:
        """Mean training loss against ``target`` (same shape as :attr:`point`)."""
        raise NotImplementedError

    def sample(self, count: int) -> Tensor:
        """``(count, *point.shape)`` draws from torch's global generator (callers seed it)."""
        raise NotImplementedError

    def icdf(self, level: float) -> Tensor:
        """The ``level`` quantile, when :attr:`analytic`."""
        raise NotImplementedError


class PointPredictive(Predictive):
    def __init__(self, raw: Tensor) -> None:
        self.point = raw

    def loss(self, target: Tensor) -> Tensor:
        return F.mse_loss(self.point, target)

    def sample(self, count: int) -> Tensor:
        return self.point.expand(count, *self.point.shape)


class GaussianPredictive(Predictive):
    analytic = True

    def __init__(self, raw: Tensor) -> None:
        mean, spread = raw.chunk(2, dim=-1)
        self.point, self.std = mean, F.softplus(spread) + MIN_STD

    def loss(self, target: Tensor) -> Tensor:
        return F.gaussian_nll_loss(self.point, target, self.std.square(), full=True)

    def sample(self, count: int) -> Tensor:
        return self.point + self.std * torch.randn(count, *self.point.shape,
                                                   dtype=self.point.dtype, device=self.point.device)

    def icdf(self, level: float) -> Tensor:
        return torch.distributions.Normal(self.point, self.std, validate_args=False).icdf(
            torch.tensor(level, dtype=self.point.dtype, device=self.point.device))


class StudentTPredictive(Predictive):
    def __init__(self, raw: Tensor) -> None:
        loc, spread, tail = raw.chunk(3, dim=-1)
        self.point = loc
        self.dist = torch.distributions.StudentT(2.0 + F.softplus(tail), loc,
                                                 F.softplus(spread) + MIN_STD, validate_args=False)

    def loss(self, target: Tensor) -> Tensor:
        return -self.dist.log_prob(target).mean()

    def sample(self, count: int) -> Tensor:
        return self.dist.sample((count,))


class NegativeBinomialPredictive(Predictive):
    """Counts in original units ``value * scale + loc``; ``loc``/``scale`` ``(targets,)``."""

    def __init__(self, raw: Tensor, loc: Tensor, scale: Tensor) -> None:
        raw_mean, raw_dispersion = raw.chunk(2, dim=-1)
        self.loc, self.scale = loc, scale
        # Starts at the training mean (raw 0), and stays positive.
        mu = scale * F.softplus(raw_mean + loc / scale) + MIN_STD
        count = 1.0 / (F.softplus(raw_dispersion) + MIN_STD)  # total_count = 1 / alpha
        self.dist = torch.distributions.NegativeBinomial(count, logits=mu.log() - count.log(),
                                                         validate_args=False)
        self.point = (mu - loc) / scale

    def loss(self, target: Tensor) -> Tensor:
        counts = (target * self.scale + self.loc).round().clamp_min(0.0)
        return -self.dist.log_prob(counts).mean()

    def sample(self, count: int) -> Tensor:
        return (self.dist.sample((count,)) - self.loc) / self.scale


class QuantilePredictive(Predictive):
    """Quantiles at ``levels`` (ascending); values between levels are linear in the level,
    values beyond the extreme levels are the extreme quantiles."""

    analytic = True

    def __init__(self, raw: Tensor, levels: list[float]) -> None:
        size = len(levels)
        stacked = torch.stack(raw.chunk(size, dim=-1), dim=-1)  # (batch, steps, targets, q)
        self.unsorted = stacked
        self.values = stacked.sort(dim=-1).values
        self.levels = torch.tensor(levels, dtype=raw.dtype, device=raw.device)
        self.point = self.icdf(0.5)

    def loss(self, target: Tensor) -> Tensor:
        error = target.unsqueeze(-1) - self.unsorted
        return torch.maximum(self.levels * error, (self.levels - 1.0) * error).mean()

    def icdf(self, level: float | Tensor) -> Tensor:
        """A scalar ``level`` → ``(batch, steps, targets)``; levels ``(batch, steps, targets,
        k)`` → the same shape."""
        if isinstance(level, float | int):
            return self._icdf_at(float(level))
        level = torch.as_tensor(level, dtype=self.values.dtype, device=self.values.device)
        scalar = level.dim() == 0
        if scalar:
            level = level.expand(*self.values.shape[:-1], 1)
        level = level.clamp(self.levels[0], self.levels[-1]).contiguous()
        upper = torch.searchsorted(self.levels, level).clamp(1, len(self.levels) - 1)
        low, high = self.levels[upper - 1], self.levels[upper]
        below, above = self.values.gather(-1, upper - 1), self.values.gather(-1, upper)
        result = below + (level - low) / (high - low) * (above - below)
        return result.squeeze(-1) if scalar else result

    def _icdf_at(self, level: float) -> Tensor:
        """A Python ``level``: the bracketing levels are found here, not by a tensor search,
        so traced and ONNX graphs (which have no ``searchsorted``) hold plain indexing."""
        # Same float32 arithmetic as the tensor path, so both give the same bits.
        value = torch.tensor(level, dtype=self.levels.dtype).clamp(self.levels[0],
                                                                   self.levels[-1])
        upper = min(max(bisect.bisect_left(self.levels.tolist(), value.item()), 1),
                    len(self.levels) - 1)
        low, high = self.levels[upper - 1], self.levels[upper]
        below, above = self.values[..., upper - 1], self.values[..., upper]
        return below + (value.to(self.levels.device) - low) / (high - low) * (above - below)

    def sample(self, count: int) -> Tensor:
        uniform = torch.rand(*self.point.shape, count, dtype=self.values.dtype,
                             device=self.values.device)
        return self.icdf(uniform).movedim(-1, 0)


def shift_location(likelihood: str, raw: Tensor, offset: Tensor,
                   quantiles: list[float] | None = None) -> Tensor:
    """``raw`` ``(batch, steps, targets * size)`` with ``offset`` ``(batch, steps, targets)``
    added to its location outputs: the first chunk (the mean, location or count mean), or
    every quantile's chunk, so the whole distribution moves by ``offset`` in scaled units.
    For counts the offset enters before the softplus, so the mean moves by it wherever it is
    well above zero."""
    size = parameter_count(likelihood, quantiles)
    if likelihood == "quantile":
        return raw + offset.repeat(1, 1, size)
    targets = offset.shape[-1]
    return torch.cat([raw[..., :targets] + offset, raw[..., targets:]], dim=-1)


_PREDICTIVES: dict[str, type[Predictive]] = {
    "none": PointPredictive, "gaussian": GaussianPredictive, "student_t": StudentTPredictive,
    "negative_binomial": NegativeBinomialPredictive, "quantile": QuantilePredictive}


def has_closed_form(likelihood: str) -> bool:
    """Whether ``likelihood``'s quantiles (so its intervals) come without sample paths (its
    :class:`Predictive`'s ``analytic``)."""
    return _PREDICTIVES[likelihood].analytic


def predictive(likelihood: str, raw: Tensor, loc: Tensor, scale: Tensor,
               quantiles: list[float] | None = None) -> Predictive:
    """The :class:`Predictive` of ``raw`` ``(batch, steps, targets * size)``; ``loc``/``scale``
    ``(targets,)`` are the targets' scaling (used by the count likelihood only)."""
    if likelihood == "none":
        return PointPredictive(raw)
    if likelihood == "gaussian":
        return GaussianPredictive(raw)
    if likelihood == "student_t":
        return StudentTPredictive(raw)
    if likelihood == "negative_binomial":
        return NegativeBinomialPredictive(raw, loc, scale)
    if likelihood == "quantile":
        return QuantilePredictive(raw, list(quantiles or ()))
    raise ValueError(f"likelihood: expected one of {sorted([*PARAMETERS, 'quantile'])}, "
                     f"got {likelihood!r}")
