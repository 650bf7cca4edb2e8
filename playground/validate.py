"""Input checks shared by every tab's compute. Each raises ``ValueError`` naming the field.

Raw HTTP can carry NaN and infinities that Gradio's own bounds do not catch, so every
numeric input of every endpoint passes through one of these.
"""

from __future__ import annotations

import math
from typing import Any, Sequence


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``; floats must be whole numbers."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    if not low <= int(number) <= high:
        shown = int(number) if abs(number) < 1e15 else f"{number:g}"  # not 300 digits for 1e300
        raise ValueError(f"{name} must be in {low}..{high}, got {shown}")
    return int(number)


def check_float(name: str, value: Any, low: float, high: float) -> float:
    """``value`` as a finite float in ``[low, high]``."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")
    if not low <= number <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {number:g}")
    return number


def check_choice(name: str, value: Any, options: Sequence[str]) -> str:
    """``value`` if it is one of ``options`` (exact match), else a message listing them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value
