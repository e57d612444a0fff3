# Cython declarations for order.py (augmenting .pxd: the .py stays plain Python).
cdef class Order:
    cdef public long long order_id, account, symbol, side, order_type, time_in_force, price
    cdef public long long quantity, leaves, quote_quantity, stop_price, expire_time, post_only
    cdef public long long stp, hold, triggered
