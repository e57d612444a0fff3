"""The matcher: runs one engine shard over the command log (see ``shard``)."""
