# Cython declarations for matching.py (augmenting .pxd: the .py stays plain Python).
cimport cython
from .book cimport BookSide, Level, OrderBook
from .order cimport Order, make_order
from .risk cimport Account, Balances

# Module constants as C integers, so comparisons with them compile to C.
cdef long long _BUY, _SELL, _LIMIT, _MARKET, _STOP_LIMIT, _STOP_MARKET, _GTC, _IOC, _FOK, _GTD, _STP_NONE, _STP_NEWEST, _STP_OLDEST, _STP_BOTH, _STP_DECREMENT, _NEW_ORDER, _CANCEL, _AMEND, _MASS_CANCEL, _TICK, _DEPOSIT, _WITHDRAW, _ACCEPTED, _REJECTED, _TRADE, _CANCELLED, _EXPIRED, _AMENDED, _TRIGGERED, _BOOK, _DEPOSITED, _WITHDRAWN, _SELF_TRADE, _INSUFFICIENT_FUNDS, _PRICE_OUT_OF_BAND, _IMMEDIATE_OR_CANCEL, _USER, _MASS, _UNKNOWN_ORDER, _NO_LIMIT

@cython.locals(q=cython.longlong, r=cython.longlong)
cdef long long _fee(long long amount, long long bps)

cdef class ReferenceEngine:
    cdef dict _instruments, _books, _orders
    cdef Balances _balances
    cdef set _assets
    cdef list _expiries
    cdef long long _seq, _time
    cdef list _events

    @cython.locals(seq=cython.longlong, kind=cython.longlong, events=list)
    cpdef list submit(self, object command)
    @cython.locals(events=list)
    cdef _emit(self, long long kind, long long symbol, long long order_id, long long account, long long side,
               long long price, long long quantity, long long leaves, long long reason=*)
    @cython.locals(events=list)
    cdef _emit_level(self, long long symbol, long long side, Level level)
    cdef _reject(self, object c, object order_id, long long reason, long long symbol=*)
    @cython.locals(is_market=cython.bint)
    cdef long long _validate(self, OrderBook book, long long account, long long side, long long otype,
                             long long tif, long long price, long long quantity, long long quote_quantity,
                             long long stop_price, long long expire_time, long long post_only,
                             long long stp) except? -1
    @cython.locals(asset=cython.longlong, need=cython.longlong)
    cdef long long _initial_hold(self, OrderBook book, long long account, long long side, long long otype,
                                 long long price, long long quantity, long long quote_quantity) except? -2
    @cython.locals(book=OrderBook, order=Order, hold=cython.longlong, reason=cython.longlong,
                   order_id=cython.longlong, side=cython.longlong, account=cython.longlong,
                   tif=cython.longlong, otype=cython.longlong, symbol=cython.longlong, price=cython.longlong,
                   quantity=cython.longlong, quote_quantity=cython.longlong, stop_price=cython.longlong,
                   expire_time=cython.longlong, post_only=cython.longlong, stp=cython.longlong)
    cdef _new_order(self, object c)
    @cython.locals(side=cython.longlong, otype=cython.longlong, is_market=cython.bint, limit=cython.longlong,
                   band=cython.longlong, reference=cython.longlong, width=cython.longlong,
                   stopped=cython.longlong, level=Level, opposite=BookSide, keys=list)
    cdef _execute(self, OrderBook book, Order order)
    cdef _end(self, OrderBook book, Order order, long long reason)
    @cython.locals(opposite=BookSide, sign=cython.longlong, limit_key=cython.longlong, need=cython.longlong,
                   budget=cython.longlong, qpt=cython.longlong, account=cython.longlong, stp=cython.longlong,
                   key=cython.longlong, price=cython.longlong, maker=Order, qty=cython.longlong,
                   affordable=cython.longlong)
    cdef bint _fillable(self, OrderBook book, Order taker, long long limit) except? -1

    @cython.locals(side=cython.longlong, sign=cython.longlong, limit_key=cython.longlong,
                   qpt=cython.longlong, bpl=cython.longlong, base_id=cython.longlong,
                   quote_id=cython.longlong, by_quote=cython.bint, budgeted=cython.bint,
                   taker_limit_buy=cython.bint, taker_bps=cython.longlong, maker_bps=cython.longlong,
                   stp=cython.longlong, taker_account=cython.longlong, seq=cython.longlong,
                   stopped=cython.longlong, price=cython.longlong, touched=cython.bint,
                   qty=cython.longlong, cut=cython.longlong, notional_per_lot=cython.longlong,
                   affordable=cython.longlong, notional=cython.longlong, base_amount=cython.longlong,
                   taker_fee=cython.longlong, maker_fee=cython.longlong, paid=cython.longlong,
                   opposite=BookSide, level=Level, maker=Order, balances=Balances, events=list,
                   keys=list, levels=dict, orders=dict, symbol=cython.longlong)
    cdef long long _match(self, OrderBook book, Order taker, long long limit) except? -2
    @cython.locals(freed=cython.longlong, asset=cython.longlong)
    cdef _decrement(self, OrderBook book, Order order, Level level, long long cut)
    @cython.locals(order_id=cython.longlong, order=Order)
    cdef _fire_stops(self, OrderBook book)
    @cython.locals(budget=cython.longlong)
    cdef _activate(self, OrderBook book, Order order)
    @cython.locals(book=OrderBook, leaves=cython.longlong, side=BookSide, level=Level)
    cdef _remove_live(self, Order order, long long kind, long long reason)
    @cython.locals(order=Order)
    cdef _cancel(self, object c)
    cdef _expire(self)
