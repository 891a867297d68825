"""Teacher-forcing ratio schedules for decoders (scheduled sampling, Bengio et al. 2015)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TeacherForcingSchedule:
    """Probability of feeding the true previous token to the decoder at training step ``step``.

    Decays linearly from ``start`` to ``floor`` over ``decay_steps`` steps, then stays at
    ``floor``; ``decay_steps=0`` keeps ``start`` throughout. The ratio is a pure function of the
    step, so a resumed run gets the same ratios without saving any state.
    """

    start: float = 1.0
    floor: float = 1.0
    decay_steps: int = 0

    def __post_init__(self) -> None:
        for name in ("start", "floor"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {value!r}")
        if not isinstance(self.decay_steps, int) or self.decay_steps < 0:
            raise ValueError(f"decay_steps: expected an integer >= 0, got {self.decay_steps!r}")

    def ratio(self, step: int) -> float:
        """The teacher-forcing ratio at training step ``step`` (0-based)."""
        if step < 0:
            raise ValueError(f"step: expected an integer >= 0, got {step!r}")
        if self.decay_steps == 0:
            return float(self.start)
        progress = min(step / self.decay_steps, 1.0)
        return float(self.start + (self.floor - self.start) * progress)
