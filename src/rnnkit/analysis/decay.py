"""Summaries of a gradient-norm curve: decay rate, effective memory length and a verdict.

A curve is indexed by *distance* ``d`` from the end where the loss is taken (``d = 0`` at the
last step). For a linear recurrence ``h_t = W h_{t-1}`` the norm behaves like ``ρ^d``, so the
slope of ``ln ||∂L/∂h_{T-d}||`` against ``d`` is ``ln ρ``: the decay rate per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VANISHING = "vanishing"
EXPLODING = "exploding"
STABLE = "stable"
UNDETERMINED = "undetermined"


@dataclass(frozen=True)
class FlowThresholds:
    """When a curve is called vanishing or exploding, and where memory ends.

    - ``vanishing_factor``: a fitted factor per step below this (default 0.95: the norm loses
      more than 5% per step, i.e. halves within 14 steps) is *vanishing*.
    - ``exploding_factor``: a factor above this (default 1.05: grows more than 5% per step,
      doubles within 15 steps) is *exploding*; in between is *stable*.
    - ``memory_fraction``: the memory length is how many steps back from the loss end the norm
      is still at least this fraction (default 1%) of its value at the loss end.
    """

    vanishing_factor: float = 0.95
    exploding_factor: float = 1.05
    memory_fraction: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 < self.vanishing_factor <= 1.0 <= self.exploding_factor:
            raise ValueError(
                "FlowThresholds: expected 0 < vanishing_factor <= 1 <= exploding_factor, got "
                f"vanishing_factor={self.vanishing_factor}, "
                f"exploding_factor={self.exploding_factor}")
        if not 0.0 < self.memory_fraction < 1.0:
            raise ValueError(f"FlowThresholds.memory_fraction: expected a value in (0, 1), got "
                             f"{self.memory_fraction}")


@dataclass(frozen=True)
class FlowSummary:
    """What a gradient-norm curve says about memory.

    - ``decay_rate``: least-squares slope of ``ln norm`` per step of distance from the loss end
      (``ln 0.5 ≈ -0.69`` when the norm halves per step; positive when it grows going back).
    - ``factor_per_step``: ``exp(decay_rate)``.
    - ``memory_length``: how many steps back the norm stays at least ``memory_fraction`` of its
      value at the loss end (farthest reach); ``censored=True`` when that is the whole ``span``.
    - ``verdict``: ``vanishing | exploding | stable | undetermined`` (fewer than 2 usable points).
    """

    decay_rate: float
    factor_per_step: float
    memory_length: int
    censored: bool
    verdict: str
    span: int

    @property
    def memory_text(self) -> str:
        """``"14"``, or ``">= 62"`` when the memory reaches the whole measured span."""
        return f">= {self.memory_length}" if self.censored else str(self.memory_length)

    def describe(self) -> str:
        """One line for people: rate, factor, memory and verdict."""
        memory = self.memory_text
        return (f"{self.verdict}: x{self.factor_per_step:.3f} per step "
                f"(ln rate {self.decay_rate:+.4f}), memory {memory} steps of {self.span}")


def decay_rate(norms_by_distance: np.ndarray) -> float:
    """Slope of ``ln norm`` vs distance over the finite, positive points (NaN if fewer than 2)."""
    norms = np.asarray(norms_by_distance, dtype=np.float64)
    distance = np.arange(norms.size, dtype=np.float64)
    usable = np.isfinite(norms) & (norms > 0)
    if usable.sum() < 2:
        return math.nan
    slope, _ = np.polyfit(distance[usable], np.log(norms[usable]), deg=1)
    return float(slope)


def memory_length(norms_by_distance: np.ndarray, fraction: float) -> tuple[int, bool]:
    """``(steps, censored)``: how many steps back the gradient still reaches.

    The farthest distance whose norm is at least ``fraction`` of the reference norm, plus one
    (the last step itself counts). The reference is the norm at distance 0, or the first
    non-zero one when the loss does not read the final state directly (an LSTM's last ``c``
    when only ``h`` is used). A curve that dips and recovers is judged by its farthest reach,
    not by its first dip. ``censored`` is True when the reach is the whole measured span: the
    true memory may be longer than the sequence.
    """
    norms = np.asarray(norms_by_distance, dtype=np.float64)
    finite = np.isfinite(norms)
    positive = np.flatnonzero(finite & (norms > 0))
    if positive.size == 0:
        return 0, not finite.any()
    reference = norms[positive[0]]
    reached = np.flatnonzero(finite & (norms >= fraction * reference))
    last_measured = int(np.flatnonzero(finite)[-1])
    return int(reached[-1]) + 1, int(reached[-1]) == last_measured


def summarize(
    norms_by_distance: np.ndarray, thresholds: FlowThresholds | None = None
) -> FlowSummary:
    """:class:`FlowSummary` of a curve ``(distance,)`` of gradient norms (NaN where unmeasured)."""
    thresholds = thresholds or FlowThresholds()
    rate = decay_rate(norms_by_distance)
    length, censored = memory_length(norms_by_distance, thresholds.memory_fraction)
    if math.isnan(rate):
        verdict = UNDETERMINED
    elif rate < math.log(thresholds.vanishing_factor):
        verdict = VANISHING
    elif rate > math.log(thresholds.exploding_factor):
        verdict = EXPLODING
    else:
        verdict = STABLE
    span = int(np.isfinite(np.asarray(norms_by_distance, dtype=np.float64)).sum())
    return FlowSummary(rate, math.exp(rate) if not math.isnan(rate) else math.nan, length,
                       censored, verdict, span)
