"""Drawing helpers shared by the main figures (harness/report/figures.py) and the
studies' own (harness/studies/): panel grids, log axes with plain labels, and
axis labels from the metric's MetricDef.  matplotlib is imported on use."""
from __future__ import annotations

import math

import numpy as np

from ..metrics.definitions import DEFINITIONS


def axis_label(metric: str) -> str:
    label, unit = DEFINITIONS[metric].column, DEFINITIONS[metric].unit
    return f"{label} ({unit})" if unit else label


def panels(n: int, columns: int, width: float, height: float):
    from matplotlib.figure import Figure

    ncols = min(columns, n)
    nrows = math.ceil(n / ncols)
    width = max(width, 4.8) if ncols == 1 else width   # a lone panel: room for its labels and a side legend
    fig = Figure(figsize=(width * ncols, height * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.remove()
    return fig, list(axes[:n])


def log_axis(ax, which: str, values) -> None:
    """Log scale with plain labels (0.05, not 5×10⁻²), as dense as the range allows."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    values = np.asarray([v for v in values if v > 0], dtype=float)
    decades = math.log10(values.max() / values.min()) if len(values) else 0.0
    ax.set(**{f"{which}scale": "log"})
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(subs=(1, 2, 5) if decades < 1.5 else (1, 3) if decades < 2.5 else (1,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())
