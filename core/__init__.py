"""Rialto's domain model and the pure-Python reference matching engine.

Layout: ``numbers`` (decimal strings at the edge, integers inside),
``instrument`` (assets and instruments), ``commands`` and ``events`` (the
engine's only inputs and outputs), ``order``, ``book``, ``risk`` and
``matching`` (the reference engine, compiled by Cython as the ``cython``
backend), ``snapshot`` (the canonical shard state shared by every backend),
``engine`` (the interface every backend implements and ``open_engine``).

This package depends on nothing but the standard library (``batch`` imports
NumPy when it is called).
"""
