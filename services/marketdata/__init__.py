"""Market data: the book cache, trades tape and candles, fanned out to subscribers."""
