"""Rialto's matching engine in Rust: the ``rust`` backend of ``core.engine``.

``Engine`` has exactly the API of ``core.matching.ReferenceEngine`` and emits
the same events and snapshots for every command stream.
"""

from rialto_native._native import Engine, RialtoError

__all__ = ["Engine", "RialtoError"]
