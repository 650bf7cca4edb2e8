"""Input checks shared by every tab's compute. Each raises ``ValueError`` naming the field.

Raw HTTP can carry NaN and infinities that Gradio's own bounds do not catch, so every
numeric input of every endpoint passes through one of these.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``; floats must be whole numbers."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {shown(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {shown(value)}") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {shown(value)}")
    if not low <= int(number) <= high:
        got = int(number) if abs(number) < 1e15 else f"{number:g}"  # not 300 digits for 1e300
        raise ValueError(f"{name} must be in {low}..{high}, got {got}")
    return int(number)


def check_float(name: str, value: Any, low: float, high: float) -> float:
    """``value`` as a finite float in ``[low, high]``."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {shown(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {shown(value)}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {shown(value)}")
    if not low <= number <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {number:g}")
    return number


def check_choice(name: str, value: Any, options: Sequence[str]) -> str:
    """``value`` if it is one of ``options`` (exact match), else a message listing them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {shown(value)}")
    return value


def check_text(name: str, value: Any, max_chars: int, example: str) -> str:
    """``value`` stripped, if it is a non-empty text of at most ``max_chars`` characters; the
    message for an empty one shows ``example``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty text, e.g. {example!r}")
    if len(value) > max_chars:
        raise ValueError(f"{name} has {len(value):,} characters; at most {max_chars} are allowed")
    return value.strip()


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (a stranger may send megabytes)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return f"{text[:limit]}…{size}"


def parse_json(name: str, text: str) -> Any:
    """``json.loads(text)``, or a ``ValueError`` that says what is wrong with it (also for
    nesting too deep for Python's parser, which raises ``RecursionError``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name}: not valid JSON ({err.msg} at character {err.pos})") from None
    except RecursionError:
        raise ValueError(f"{name}: JSON nested too deeply to be read") from None
