"""Latency samples and percentiles (nearest rank), shared by the load tools."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def percentiles(samples_ns: Sequence[int] | np.ndarray, points: Iterable[float] = PERCENTILES) -> dict[str, float]:
    """Nearest-rank percentiles of nanosecond samples, in milliseconds (plus mean, max and count)."""
    a = np.asarray(samples_ns, dtype=np.int64)
    out: dict[str, float] = {"count": float(a.size)}
    if a.size == 0:
        for p in points:
            out[f"p{p:g}"] = float("nan")
        out["mean"] = out["max"] = float("nan")
        return out
    a = np.sort(a)
    for p in points:
        rank = max(1, int(np.ceil(p / 100.0 * a.size)))
        out[f"p{p:g}"] = a[rank - 1] / 1e6
    out["mean"] = float(a.mean()) / 1e6
    out["max"] = a[-1] / 1e6
    return out


def fmt_ms(value: float) -> str:
    if value != value:  # nan
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain Markdown table (pipes), columns padded."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in cells[1:]:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)
