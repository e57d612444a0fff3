"""Benchmarks of the matching engine backends (not part of the test suite).

``bench.workload`` generates the deterministic order flow, ``bench.engine``
replays it through every importable backend (``python -m bench.engine``) and
``bench/test_engine_micro.py`` holds the pytest-benchmark micro benchmarks.
See ``bench/README.md``.
"""
