"""How long `syncd --help` and `syncd status` take to start and finish, as a person runs them.

Each is run as a fresh process (the installed ``syncd`` script beside this Python, else
``python -m syncd``) ``RUNS`` times; the median is the figure, so one slow run on a busy
machine does not decide it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RUNS = 5
ROOT = Path(__file__).resolve().parents[2]


def _command() -> list[str]:
    script = Path(sys.executable).parent / "syncd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "syncd"]


def _time(args: list[str], runs: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    code = 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - this interpreter's syncd, fixed argv
            [*_command(), *args], cwd=ROOT, env=env, capture_output=True, check=False
        )
        times.append(time.perf_counter() - started)
        code = code or done.returncode
        if done.returncode == 2:  # usage or configuration error: the figure would be a lie
            message = f"syncd {' '.join(args)} exited 2: {done.stderr.decode()[-500:]}"
            raise RuntimeError(message)
    return {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times],
            "exit_code": code}  # fmt: skip


def start_times(config: str, runs: int = RUNS) -> dict[str, Any]:
    """``--help`` and ``status`` (against ``config``'s state store): median wall seconds.
    Raises ``RuntimeError`` when one exits 2 (a usage or configuration error)."""
    return {
        "syncd --help": _time(["--help"], runs),
        "syncd status": _time(["--config", config, "status"], runs),
    }
