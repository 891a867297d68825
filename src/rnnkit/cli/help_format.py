"""How ``--help`` shows on/off flags.

typer 0.29 prints a type column of ``<bool>`` beside every flag (``--json <bool>``,
``--progress/--no-progress <bool>``), which reads as if the flag took a value
(``--json true``). A flag takes none: its switch(es) and, for a pair, ``[default: progress]``
say everything, so the type column is left empty for flags.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption


def hide_flag_types() -> None:
    """Make ``--help`` show no type for flags (idempotent; other options are unchanged)."""
    original = TyperOption.display_type_rich
    if getattr(original, "_rnnkit_hides_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag:
            return None
        return original(self, ctx)

    display_type_rich._rnnkit_hides_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
