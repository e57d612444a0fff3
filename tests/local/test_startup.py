"""What ``rialto up --profile local`` says when its servers would not keep acknowledged orders."""

from __future__ import annotations

import subprocess
import sys

from e2e.helpers import ROOT

from services.log.redis_streams import durability_problem


def test_a_redis_without_an_fsynced_append_only_file_is_refused_with_what_to_set() -> None:
    problem = durability_problem({"appendonly": "no", "appendfsync": "everysec"}, require="always")
    assert problem is not None and "appendonly" in problem
    assert durability_problem({"appendonly": "yes", "appendfsync": "everysec"}, require="always") is not None
    assert durability_problem({"appendonly": "yes", "appendfsync": "always"}, require="always") is None
    assert durability_problem({"appendonly": "yes", "appendfsync": "everysec"}, require="everysec") is None


def test_an_unreachable_postgresql_stops_the_start_with_a_clear_message(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "control", "up", "--profile", "local", "--data", str(tmp_path), "--port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
             "RIALTO_POSTGRES_DSN": "postgresql://postgres@127.0.0.1:1/rialto"},
    )
    assert result.returncode == 2, result.stderr
    assert "PostgreSQL" in result.stderr and "unavailable" in result.stderr
    assert "Traceback" not in result.stderr
