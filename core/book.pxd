# Cython declarations for book.py (augmenting .pxd: the .py stays plain Python).
cimport cython
from .order cimport Order

cdef long long _BUY

cdef class Level:
    cdef public long long price, total, count
    cdef public object orders

cdef class BookSide:
    cdef public long long side, sign
    cdef public dict levels
    cdef public list keys
    @cython.locals(level=Level, price=cython.longlong)
    cpdef Level add(self, Order order)
    @cython.locals(level=Level)
    cpdef Level unlink(self, Order order)
    cpdef drop_if_empty(self, Level level)

cdef class OrderBook:
    cdef public object instrument
    cdef public long long symbol, last_price
    cdef public BookSide bids, asks
    cdef public list buy_stops, sell_stops
    cdef public long long base_id, quote_id, base_per_lot, quote_per_tick_lot, min_quantity
    cdef public long long max_quantity, max_price, price_band_bps, maker_fee_bps, taker_fee_bps
    cdef public long long reference_price
    cpdef BookSide side(self, long long side)
    @cython.locals(band=cython.longlong, reference=cython.longlong, width=cython.longlong)
    cpdef bint in_band(self, long long price)
    cpdef bint would_cross(self, long long side, long long price)
    cpdef add_stop(self, Order order)
    cpdef remove_stop(self, Order order)
