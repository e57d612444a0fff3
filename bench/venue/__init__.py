"""End-to-end load benchmarks of the venue (embedded profile): REST, WebSocket order entry, market-data fan-out.

``python -m bench.venue [rest|rest-open|ws|fanout|all] [--duration S] ...`` (see ``bench/venue/README.md``).
Every run starts a fresh venue (``python -m control up``) over a temporary data directory on a free port of
127.0.0.1, registers and funds its users through the API, runs a bounded load, prints a table and stops the
venue. Nothing here is part of the test suite.
"""
