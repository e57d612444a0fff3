"""REST order entry, closed loop: wrk with ``lua/orders.lua`` over persistent connections.

wrk keeps ``connections`` requests in flight (one per connection) and sends the next one when a response
arrives, so its latencies are those of a saturating closed loop (coordinated omission applies: see
``httpload`` for the open-loop measurement). The script's mix is in ``mix.py``'s docstring.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.venue.accounts import User

LUA = Path(__file__).resolve().parent / "lua" / "orders.lua"


def script(users: list[User], dest: Path) -> Path:
    """The wrk script for these users: their tokens, then ``lua/orders.lua``."""
    if not 1 <= len(users) <= 100:
        raise ValueError("the wrk script encodes the user in the quantity: 1..100 users")
    tokens = ",\n".join(f'  "{u.token}"' for u in users)
    dest.write_text(f"tokens = {{\n{tokens}\n}}\n\n" + LUA.read_text())
    return dest


def _wrk_value(text: str) -> float:
    """'1.23ms' / '850.00us' / '2.01s' -> milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        return float("nan")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]
    return float(m.group(1)) * scale


def parse(stdout: str) -> dict[str, Any]:
    """wrk's own report (requests/s, latency distribution, non-2xx) and the script's BENCH line."""
    out: dict[str, Any] = {"raw": stdout}
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            out["bench"] = json.loads(line[6:])
        m = re.match(r"\s+(50|75|90|99)%\s+(\S+)", line)
        if m:
            out.setdefault("distribution_ms", {})[f"p{m.group(1)}"] = _wrk_value(m.group(2))
        m = re.match(r"Requests/sec:\s+([\d.]+)", line)
        if m:
            out["requests_per_second"] = float(m.group(1))
        m = re.match(r"\s+Non-2xx or 3xx responses:\s+(\d+)", line)
        if m:
            out["non_2xx"] = int(m.group(1))
        m = re.match(r"\s+(\d+) requests in ([\d.]+\w+)", line)
        if m:
            out["requests"] = int(m.group(1))
    out.setdefault("non_2xx", 0)
    return out


def run(url: str, users: list[User], workdir: Path, duration: float, connections: int, threads: int = 2,
        timeout: float = 10.0) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    path = script(users, workdir / "orders-run.lua")
    cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--timeout", f"{timeout:g}s",
           "--latency", "-s", str(path), url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}\n{done.stdout}")
    result = parse(done.stdout)
    result["command"] = " ".join([*cmd[:-3], "-s", "bench/venue/lua/orders.lua(+tokens)", url])
    return result
