"""The ordered log: the interface (``base``) and one adapter module per technology.

``journal`` is the embedded profile's file journal; Redis Streams and Kinesis
adapters implement the same ``Log`` interface.
"""

from services.log.base import (
    Log,
    LogClosed,
    LogError,
    LogTruncated,
    Position,
    decode_command,
    decode_commands,
    decode_events,
    encode_command,
    encode_commands,
    encode_events,
)

__all__ = [
    "Log",
    "LogClosed",
    "LogError",
    "LogTruncated",
    "Position",
    "decode_command",
    "decode_commands",
    "decode_events",
    "encode_command",
    "encode_commands",
    "encode_events",
]
