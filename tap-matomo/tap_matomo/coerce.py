"""Type coercion for Matomo values, which arrive as numbers or numeric strings.

Empty strings are not values: they become None, never `''` or `0`.
"""

from __future__ import annotations

import typing as t


def text(value: t.Any) -> str | None:
    """A non-empty string, or None."""
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def integer(value: t.Any) -> int | None:
    """An int from an int, an integral float or a numeric string; None when absent or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):  # Matomo's flags become 0/1, never JSON true/false in an integer column
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        try:
            return int(float(str(value)))
        except ValueError:
            return None


def number(value: t.Any) -> int | float | None:
    """A JSON number from a number or numeric string; None when absent, empty or not numeric."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        parsed = float(str(value).strip())
    except ValueError:
        return None
    return int(parsed) if parsed.is_integer() and "." not in str(value) else parsed
