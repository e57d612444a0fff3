# Cython declarations for order.py (augmenting .pxd: the .py stays plain Python).
cimport cython

cdef class Order:
    cdef public long long order_id, account, symbol, side, order_type, time_in_force, price
    cdef public long long quantity, leaves, quote_quantity, stop_price, expire_time, post_only
    cdef public long long stp, hold, triggered

@cython.locals(order=Order)
cpdef Order make_order(long long order_id, long long account, long long symbol, long long side,
                       long long order_type, long long time_in_force, long long price, long long quantity,
                       long long quote_quantity, long long stop_price, long long expire_time,
                       long long post_only, long long stp, long long hold)
