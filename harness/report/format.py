"""How the suite prints a number: one place, chosen by the metric's ``fmt``
(harness/metrics/definitions.py) or asked for by kind.

    >>> format_cell(12.345, 1.4, "test_acc")
    '12.35 ± 1.40'
    >>> format_cell(0.00012, 0.00003, "param_dist")
    '1.20e-04 ± 3.0e-05'
"""
from __future__ import annotations

import math

import pandas as pd

from ..metrics.definitions import DEFINITIONS

MISSING = "—"
RELEARN_CAP_LABEL = "> {cap}"


def missing(value) -> bool:
    """None, NaN or pandas' NA (a scalar)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def significant(x: float, digits: int = 3) -> str:
    """``digits`` significant digits; whole numbers from 10**digits up; scientific below 1e-3."""
    if missing(x):
        return MISSING
    if x == math.inf:
        return "∞"
    if abs(x) >= 10 ** digits:
        return f"{x:.0f}"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.{digits - 1}e}"


def format_value(value, metric: str | None = None, kind: str | None = None, digits: int = 3) -> str:
    """One value, printed as its metric's ``fmt`` says (or as ``kind``)."""
    if missing(value):
        return MISSING
    kind = kind or (DEFINITIONS[metric].fmt if metric in DEFINITIONS else "sig3")
    if kind == "fixed1":
        return f"{value:.1f}"
    if kind == "fixed2":
        return f"{value:.2f}"
    if kind == "speedup":
        return f"{value:.1f}×"
    if kind == "steps":
        return f"{value:g}"
    return significant(value, digits)


def format_cell(mean: float, half: float, metric: str) -> str:
    """``mean ± half`` (the half-width of its interval); the mean alone when
    there is no interval (one seed)."""
    if missing(mean):
        return MISSING
    body = format_value(mean, metric)
    if missing(half):
        return body
    kind = DEFINITIONS[metric].fmt if metric in DEFINITIONS else "sig3"
    spread = f"{half:.1f}" if kind == "speedup" else format_value(half, metric, digits=2)
    return f"{body} ± {spread}"


def mean_spread(values) -> str:
    """``mean ± std`` of the non-missing values (3 and 2 significant digits), the mean alone for one."""
    v = [float(x) for x in values if not missing(x)]
    if not v:
        return MISSING
    mean = sum(v) / len(v)
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / len(v))
    body = f"{mean:.3g}" if abs(mean) >= 1e-3 or mean == 0 else f"{mean:.2e}"
    return body + (f" ± {std:.2g}" if len(v) > 1 else "")


def percent(share) -> str:
    """A share in [0, 1] as a percentage with one decimal."""
    return MISSING if missing(share) else f"{100 * share:.1f}%"


def compact(value, digits: int = 3) -> str:
    """``digits`` significant digits between 1e-3 and 1e5, scientific outside (ratios spanning decades)."""
    if missing(value):
        return MISSING
    if value == math.inf:
        return "∞"
    return f"{value:.{digits}g}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.1e}"
