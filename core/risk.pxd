# Cython declarations for risk.py (augmenting .pxd: the .py stays plain Python).
cimport cython
cdef class Account:
    cdef public long long account_id
    cdef public list available, held

cdef class Balances:
    cdef public dict accounts
    cdef public long long asset_slots
    cdef public list supply
    @cython.locals(account=Account)
    cpdef long long available(self, long long account_id, long long asset) except? -1
    @cython.locals(account=Account)
    cpdef hold(self, long long account_id, long long asset, long long amount)
    @cython.locals(account=Account)
    cpdef release(self, long long account_id, long long asset, long long amount)
    @cython.locals(accounts=dict, buyer=Account, seller=Account, fees=Account)
    cpdef settle(self, long long buyer_id, long long seller_id, long long base, long long quote,
                 long long base_amount, long long notional, long long buyer_paid_from_hold,
                 long long buyer_fee, long long seller_fee)
