"""The dashboard's chart of recent cycles: bars for the changes, a line for the duration.

Pure geometry from the runs table, so the template only draws what this returns as an
inline SVG: no JavaScript, no chart library, nothing the CSP has to allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncd.store import RunRow

WIDTH, HEIGHT, PAD = 600, 160, 24
CHANGES = ("create", "adopt", "update", "remove", "block", "unblock")


def _changes(run: RunRow) -> int:
    return sum(int(run.summary.get(kind, 0) or 0) for kind in CHANGES)


def cycle_chart(runs: Sequence[RunRow]) -> dict[str, Any]:
    """Bars (changes per cycle) and a polyline (duration), oldest cycle on the left.

    ``runs`` come newest first, as ``StateStore.last_runs`` gives them; unfinished runs
    are left out. Both series are scaled to the chart's height by their own maximum, which
    the template prints as the axis labels.
    """
    finished = [run for run in reversed(runs) if run.finished_at is not None]
    if not finished:
        return {"width": WIDTH, "height": HEIGHT, "bars": [], "line": "", "max_changes": 0}
    changes = [_changes(run) for run in finished]
    durations = [float(run.summary.get("duration_s", 0) or 0) for run in finished]
    top_changes, top_duration = max(*changes, 1), max(*durations, 0.001)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / len(finished)
    bars, points = [], []
    for index, run in enumerate(finished):
        x = PAD + index * step
        height = inner_h * changes[index] / top_changes
        bars.append(
            {
                "x": round(x + step * 0.15, 1),
                "y": round(PAD + inner_h - height, 1),
                "width": round(step * 0.7, 1),
                "height": round(height, 1),
                "failed": run.status not in ("ok", "held"),
                "title": (
                    f"{run.run_id}: {changes[index]} changes, {durations[index]:.2f} s, "
                    f"{run.status}"
                ),
            }
        )
        y = PAD + inner_h - inner_h * durations[index] / top_duration
        points.append(f"{round(x + step / 2, 1)},{round(y, 1)}")
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "bars": bars,
        "line": " ".join(points),
        "max_changes": max(changes),
        "max_duration": round(max(durations), 2),
    }
