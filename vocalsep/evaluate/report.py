"""Reporting evaluation results: the per-track table, the summary line, JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import VocalsepError
from .scoring import V3_AGGREGATES, V3_METRICS, V4_METRICS
from .tracks import TARGETS


def _f(x) -> str:
    return "    nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:7.2f}"


def format_table(results: dict) -> str:
    """The per-track table and the aggregate line(s) of :func:`evaluate_museval` / :func:`evaluate_mir1k`."""
    mir1k = results["protocol"] == "mir1k"
    metrics = V3_METRICS if mir1k else V4_METRICS
    names = [t["name"] for t in results["tracks"]]
    w = max([len(n) for n in names] + [24])
    w = min(w, 48)
    group = len(metrics) * 8
    lines = []
    head1 = f"{'':{w}} " + (f"{'':>7} " if mir1k else "") + " | ".join(f"{t:<{group - 1}}" for t in TARGETS)
    head2 = f"{'track':{w}} " + (f"{'sec':>7} " if mir1k else "") + " | ".join(
        "".join(f"{m:>7} " for m in metrics)[:group - 1].ljust(group - 1) for _ in TARGETS)
    lines += [head1.rstrip(), head2.rstrip(), "-" * len(head2.rstrip())]
    for tr in results["tracks"]:
        row = f"{tr['name'][:w]:{w}} " + (f"{tr['duration']:7.1f} " if mir1k else "")
        row += " | ".join(" ".join(_f(tr[t][m]) for m in metrics) for t in TARGETS)
        lines.append(row)
    lines.append("-" * len(head2.rstrip()))
    lines.append(summary_line(results))
    return "\n".join(lines)


def summary_line(results: dict) -> str:
    """One line (two for mir1k) with the aggregate and how many tracks it holds."""
    method = results["method"].get("method", "?")
    n, k = results["n_tracks"], results["n_left_out"]
    unit = "clip" if results["protocol"] == "mir1k" else "track"
    held = f"{n} {unit}{'s' if n != 1 else ''}" + (f", {k} left out" if k else "")
    agg = results["aggregate"]
    if agg is None:
        return f"[{method}] no {unit} could be scored ({k} left out)"
    if results["protocol"] == "mir1k":
        mins = results.get("duration", 0.0) / 60
        parts = [f"{t}: " + " ".join(f"{m} {agg[t][m]:.2f}" for m in V3_AGGREGATES) for t in TARGETS]
        return f"[{method}] length-weighted over {held} ({mins:.1f} min): " + " | ".join(parts)
    parts = [f"{t}: " + " ".join(f"{m} {agg[t][m]:.2f}" for m in V4_METRICS) for t in TARGETS]
    return f"[{method}] median over {held}: " + " | ".join(parts)


def _json_clean(x):
    if isinstance(x, dict):
        return {k: _json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(results: dict, path: str | Path) -> None:
    """Write the results as JSON (NaN and infinities as null), atomically."""
    from .. import atomic

    path = Path(path)
    if path.parent and not path.parent.exists():
        raise VocalsepError(f"{path}: the folder {path.parent} does not exist")
    text = json.dumps(_json_clean(results), indent=1)
    atomic.write_bytes(path, (text + "\n").encode())
