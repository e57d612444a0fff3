"""py-spy on the venue process during a load: collapsed stacks, summarised as top functions.

``start(pid, seconds, dest)`` runs ``py-spy record --gil --nonblocking --format raw`` in the background:
samples of whichever thread holds the GIL (what bounds one Python process), without pausing the process.
py-spy itself takes CPU from the same 2 cores, so profiled runs are separate from the measured ones.
``summarise(path)`` turns the collapsed stacks into shares of all samples: by category (``categorise``), by
own time (the frame on top of the stack) and by total time (the frame anywhere on it); ``render`` prints
them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def start(pid: int, seconds: float, dest: Path, rate: int = 250) -> subprocess.Popen[bytes]:
    """Start recording in the background (stops by itself after ``seconds``)."""
    return subprocess.Popen(
        [py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
         "--format", "raw", "--nonblocking", "--gil", "--output", str(dest)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; keep function and file:line's file
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    short = path
    for marker in ("site-packages/", "/work/main/"):
        if marker in short:
            short = short.split(marker, 1)[1]
    return f"{name} ({short})"


# Where a sample's time goes. Venue code first: the first rule (in this order) with a pattern in any frame
# of the stack. Otherwise the library of the frame nearest the top of the stack that matches a library rule.
VENUE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("projection follower: journal re-read + SQLite writes (control/projector.py)", ("control/projector.py",)),
    ("journal writer threads (services/log/journal.py Journal._run)", ("Journal._run ",)),
    ("engine shard: apply + outcomes (services/matcher/shard.py)", ("services/matcher/shard.py",)),
    ("auth: JWT decode + EdDSA verify (services/gateway/auth/)", ("services/gateway/auth/",)),
    ("market data: feed + hub fan-out (services/marketdata/)", ("services/marketdata/",)),
    ("projection reads + order views in the request path (services/persistence/, Gateway.readable)",
     ("services/persistence/", "Gateway.readable")),
    ("intake + journal append (services/intake/, Journal.append)", ("services/intake/", "Journal.append")),
    ("gateway order logic (services/gateway/orders.py, context.py)",
     ("services/gateway/orders.py", "services/gateway/context.py")),
    ("metrics + logging (prometheus_client, GatewayMiddleware._record)",
     ("prometheus_client/", "GatewayMiddleware._record")),
)
LIBRARY_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("request validation (pydantic)", ("pydantic",)),
    ("server I/O: uvicorn HTTP/WebSocket protocol, websockets", ("uvicorn/protocols", "websockets/", "httptools")),
    ("framework: FastAPI/Starlette routing, deps, middleware", ("fastapi/", "starlette/", "uvicorn/middleware")),
    ("WebSocket session (services/gateway/routes/ws.py)", ("services/gateway/routes/ws.py",)),
    ("event loop (asyncio, uvloop)", ("asyncio/", "uvloop", "uvicorn/")),
)


def categorise(frames: list[str]) -> str:
    for name, patterns in VENUE_CATEGORIES:
        for frame in frames:
            if any(p in frame for p in patterns):
                return name
    for frame in reversed(frames):
        for name, patterns in LIBRARY_CATEGORIES:
            if any(p in frame for p in patterns):
                return name
    return "other"


def summarise(path: Path, top: int = 400) -> dict[str, Any]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        raw_frames = [f for f in stack.split(";") if f]
        frames = [_frame_name(f) for f in raw_frames]
        samples += count
        if not frames:
            continue
        categories[categorise(raw_frames)] += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    return {
        "samples": samples,
        "own": [(name, n / samples) for name, n in own.most_common(top)] if samples else [],
        "categories": [(name, n / samples) for name, n in categories.most_common()] if samples else [],
        "total": [(name, n / samples) for name, n in total.most_common(top)] if samples else [],
    }


def render(summary: dict[str, Any], top: int = 20) -> str:
    lines = [f"py-spy --gil: {summary['samples']} samples of the thread holding the GIL", "",
             "where the GIL time goes (first matching rule over the whole stack):"]
    lines += [f"  {share * 100:5.1f}%  {name}" for name, share in summary["categories"]]
    lines += ["", "top by own time:"]
    lines += [f"  {share * 100:5.1f}%  {name}" for name, share in summary["own"][:top]]
    lines += ["", "top by total time (frame anywhere on the stack; venue code only):"]
    ours = [(n, sh) for n, sh in summary["total"] if any(k in n for k in ("(services/", "(control/", "(core/"))
            and not n.startswith(("main ", "cmd_up ", "serve ", "<module> "))]
    lines += [f"  {share * 100:5.1f}%  {name}" for name, share in ours[:top]]
    return "\n".join(lines)
