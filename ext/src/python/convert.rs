//! Conversions between Python objects and the engine's records, on the
//! interpreter's C API for speed: a `submit` call reads sixteen ints and
//! builds a few `core.events.Event` tuples, and that is most of its cost.

use std::ffi::c_int;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::types::{Command, Event};

/// Read one Python int as an `i64`: `OverflowError` outside the range,
/// `TypeError` for a non-integer (anything with `__index__` is accepted).
///
/// # Safety
/// `item` is a valid object pointer and the caller is attached to the interpreter.
#[inline(always)]
pub unsafe fn int_from_ptr(py: Python<'_>, item: *mut ffi::PyObject, what: &str) -> PyResult<i64> {
    let mut overflow: c_int = 0;
    let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(item, &mut overflow) };
    if value == -1 {
        if overflow != 0 {
            return Err(PyOverflowError::new_err(format!("{what} does not fit in a signed 64-bit integer")));
        }
        if let Some(err) = PyErr::take(py) {
            return Err(if err.is_instance_of::<pyo3::exceptions::PyTypeError>(py) {
                PyTypeError::new_err(format!("{what} must be an integer"))
            } else {
                err
            });
        }
    }
    Ok(value)
}

/// Like [`int_from_ptr`], but an out-of-range value saturates (for arguments
/// whose meaning is monotone, such as a slice bound).
pub fn int_saturating(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<i64> {
    let mut overflow: c_int = 0;
    let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj.as_ptr(), &mut overflow) };
    if value == -1 {
        if overflow > 0 {
            return Ok(i64::MAX);
        }
        if overflow < 0 {
            return Ok(i64::MIN);
        }
        if let Some(err) = PyErr::take(py) {
            return Err(if err.is_instance_of::<pyo3::exceptions::PyTypeError>(py) {
                PyTypeError::new_err(format!("{what} must be an integer"))
            } else {
                err
            });
        }
    }
    Ok(value)
}

/// Read an int as an `i64`, or the direction it overflows in.
pub fn int_checked(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Result<i64, std::cmp::Ordering>> {
    Ok(match int_saturating(py, obj, what)? {
        i64::MAX if obj.gt(i64::MAX)? => Err(std::cmp::Ordering::Greater),
        i64::MIN if obj.lt(i64::MIN)? => Err(std::cmp::Ordering::Less),
        v => Ok(v),
    })
}

/// Whether ints may be read straight from CPython 3.11's `PyLongObject`
/// layout (set once at module import, only on 3.11).
pub static FAST_INTS: AtomicBool = AtomicBool::new(false);

/// Decide [`FAST_INTS`] for the running interpreter.
pub fn init_fast_ints(py: Python<'_>) {
    let v = py.version_info();
    FAST_INTS.store(v.major == 3 && v.minor == 11, Ordering::Relaxed);
}

/// An exact `int` of at most three 30-bit digits, read from CPython 3.11's
/// layout (`ob_size` = sign x digit count, digits at offset 24); `None`
/// for anything else (other types, bigger values), which takes the API path.
#[inline(always)]
unsafe fn small_int_311(p: *mut ffi::PyObject) -> Option<i64> {
    unsafe {
        if ffi::Py_TYPE(p) != ptr::addr_of_mut!(ffi::PyLong_Type) {
            return None;
        }
        let size = ffi::Py_SIZE(p);
        let digits = (p as *const u8).add(24) as *const u32;
        let magnitude = match size.unsigned_abs() {
            0 => return Some(0),
            1 => *digits as i64,
            2 => (*digits as i64) | ((*digits.add(1) as i64) << 30),
            3 if *digits.add(2) < 8 => {
                (*digits as i64) | ((*digits.add(1) as i64) << 30) | ((*digits.add(2) as i64) << 60)
            }
            _ => return None,
        };
        Some(if size < 0 { -magnitude } else { magnitude })
    }
}

/// Names of the command fields, for error messages.
const COMMAND_FIELDS: [&str; 16] = [
    "kind",
    "seq",
    "time",
    "account",
    "symbol",
    "order_id",
    "side",
    "order_type",
    "time_in_force",
    "price",
    "quantity",
    "quote_quantity",
    "stop_price",
    "expire_time",
    "post_only",
    "stp",
];

/// Read a `core.commands.Command` (or any sequence of sixteen ints).
#[inline]
pub fn command_from_py(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Command> {
    let p = obj.as_ptr();
    let mut f = [0i64; 16];
    unsafe {
        if ffi::PyTuple_Check(p) != 0 {
            if ffi::PyTuple_GET_SIZE(p) != 16 {
                return Err(PyValueError::new_err("a command has exactly 16 fields"));
            }
            let fast = FAST_INTS.load(Ordering::Relaxed);
            // The sixteen ints live wherever the caller made them: touch them
            // all first so their cache misses overlap instead of queueing.
            #[cfg(target_arch = "x86_64")]
            for i in 0..16 {
                // SAFETY: PREFETCH is a hint that never faults; the item pointers are valid.
                std::arch::x86_64::_mm_prefetch(
                    ffi::PyTuple_GET_ITEM(p, i) as *const i8,
                    std::arch::x86_64::_MM_HINT_T0,
                );
            }
            for (i, slot) in f.iter_mut().enumerate() {
                let item = ffi::PyTuple_GET_ITEM(p, i as ffi::Py_ssize_t);
                *slot = match if fast { small_int_311(item) } else { None } {
                    Some(v) => v,
                    None => int_from_ptr(py, item, COMMAND_FIELDS[i])?,
                };
            }
        } else {
            // Any other sequence (a list, a NumPy record): the slow, general path.
            let n = obj.len().map_err(|_| PyTypeError::new_err("a command must be a sequence of 16 integers"))?;
            if n != 16 {
                return Err(PyValueError::new_err("a command has exactly 16 fields"));
            }
            for (i, slot) in f.iter_mut().enumerate() {
                let item = obj.get_item(i)?;
                *slot = int_from_ptr(py, item.as_ptr(), COMMAND_FIELDS[i])?;
            }
        }
    }
    Ok(Command::from_fields(f))
}

/// The ints 0..=SMALL, created once; most event fields (sides, kinds,
/// quantities, level totals) are among them.
const SMALL: i64 = 4096;

/// Builds `core.events.Event` instances straight from event records.
pub struct EventFactory {
    event_type: Py<pyo3::types::PyType>,
    /// Allocate the tuple subclass directly (what `tuple.__new__(Event, t)`
    /// does, minus the temporary tuple); else call `tuple.__new__`.
    direct: bool,
    small: Vec<Py<PyAny>>,
    tuple_new: Py<PyAny>,
}

impl EventFactory {
    pub fn new(py: Python<'_>) -> PyResult<EventFactory> {
        let event_type = py.import("core.events")?.getattr("Event")?.cast_into::<pyo3::types::PyType>()?;
        let tp = event_type.as_type_ptr();
        let tuple_tp = ptr::addr_of_mut!(ffi::PyTuple_Type);
        let fields = event_type.getattr("_fields")?.len()?;
        if fields != 16 {
            return Err(PyValueError::new_err("core.events.Event does not have the 16 fields this engine emits"));
        }
        let direct = unsafe {
            ffi::PyType_IsSubtype(tp, tuple_tp) != 0
                && (*tp).tp_basicsize == (*tuple_tp).tp_basicsize
                && (*tp).tp_itemsize == (*tuple_tp).tp_itemsize
                && (*tp).tp_alloc.is_some()
        } && py.version_info() < (3, 13); // 3.14 caches a tuple's hash in the object, and free-threaded
                                          // builds (3.13t) make a refcount of 1 no proof of exclusivity:
                                          // keep the direct path (and reuse) to the interpreters it is sound on
        let small: Vec<Py<PyAny>> = (0..=SMALL)
            .map(|v| match v.into_pyobject(py) {
                Ok(o) => o.into_any().unbind(),
                Err(never) => match never {},
            })
            .collect();
        let tuple_new = py.get_type::<pyo3::types::PyTuple>().getattr("__new__")?.unbind();
        Ok(EventFactory { event_type: event_type.unbind(), direct, small, tuple_new })
    }

    /// A new reference to the int `v`.
    #[inline(always)]
    unsafe fn int(&self, cache: &mut IntCache, v: i64) -> *mut ffi::PyObject {
        if (0..=SMALL).contains(&v) {
            let o = self.small[v as usize].as_ptr();
            unsafe { ffi::Py_INCREF(o) };
            return o;
        }
        unsafe { cache.get(v) }
    }

    /// One `Event` (a new reference), or null with a Python error set.
    #[inline]
    unsafe fn event(&self, py: Python<'_>, cache: &mut IntCache, ev: &Event) -> *mut ffi::PyObject {
        let fields = ev.fields();
        unsafe {
            if self.direct {
                let tp = self.event_type.as_ptr() as *mut ffi::PyTypeObject;
                let Some(alloc) = (*tp).tp_alloc else {
                    return ptr::null_mut();
                };
                let obj = alloc(tp, 16);
                if obj.is_null() {
                    return obj;
                }
                for (i, &v) in fields.iter().enumerate() {
                    let item = self.int(cache, v);
                    if item.is_null() {
                        ffi::Py_DECREF(obj);
                        return ptr::null_mut();
                    }
                    ffi::PyTuple_SET_ITEM(obj, i as ffi::Py_ssize_t, item);
                }
                // Ints only: the collector has nothing to find in it (CPython
                // untracks such tuples itself at its next pass).
                ffi::PyObject_GC_UnTrack(obj as *mut std::ffi::c_void);
                obj
            } else {
                let tuple = ffi::PyTuple_New(16);
                if tuple.is_null() {
                    return tuple;
                }
                for (i, &v) in fields.iter().enumerate() {
                    let item = self.int(cache, v);
                    if item.is_null() {
                        ffi::Py_DECREF(tuple);
                        return ptr::null_mut();
                    }
                    ffi::PyTuple_SET_ITEM(tuple, i as ffi::Py_ssize_t, item);
                }
                let tuple = Bound::from_owned_ptr(py, tuple);
                match self.tuple_new.bind(py).call1((self.event_type.bind(py), tuple)) {
                    Ok(obj) => obj.into_ptr(),
                    Err(err) => {
                        err.restore(py);
                        ptr::null_mut()
                    }
                }
            }
        }
    }

    /// A list of `Event`s.
    ///
    /// With a `reuse` cache (the `submit` path), tuples and the list that the
    /// caller has already dropped are refilled instead of reallocated: an
    /// object whose only reference is the cache's is invisible to everyone
    /// else, so changing it is unobservable (CPython's own `zip` and
    /// `enumerate` reuse their result tuples the same way).
    pub fn list<'py>(
        &self,
        py: Python<'py>,
        events: &[Event],
        reuse: Option<&mut ReuseCache>,
    ) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        let mut own_ints = None;
        let mut reuse = if self.direct { reuse } else { None };
        let n = events.len() as ffi::Py_ssize_t;
        unsafe {
            let list = match reuse.as_deref_mut().and_then(|r| r.take_list(py, n)) {
                Some(list) => list,
                None => {
                    let list = ffi::PyList_New(n);
                    if list.is_null() {
                        return Err(PyErr::fetch(py));
                    }
                    Bound::from_owned_ptr(py, list).cast_into_unchecked::<pyo3::types::PyList>()
                }
            };
            for (i, ev) in events.iter().enumerate() {
                let obj = match reuse.as_deref_mut() {
                    Some(r) => match r.free_tuple() {
                        Some(at) => {
                            let (t, held) = &mut r.tuples[at];
                            self.refill(&mut r.ints, t.as_ptr(), held, ev)
                        }
                        None => {
                            let obj = self.event(py, &mut r.ints, ev);
                            if !obj.is_null() {
                                r.keep_tuple(py, obj, ev.fields());
                            }
                            obj
                        }
                    },
                    None => self.event(py, own_ints.get_or_insert_with(IntCache::default), ev),
                };
                if obj.is_null() {
                    return Err(PyErr::fetch(py));
                }
                // The list slot is empty (new list) or holds None (reused list).
                let old = ffi::PyList_GET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t);
                ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, obj);
                if !old.is_null() {
                    ffi::Py_DECREF(old);
                }
            }
            if let Some(r) = reuse {
                r.keep_list(&list);
            }
            Ok(list)
        }
    }

    /// Put new fields into a cached tuple nobody else holds (`held` are the
    /// values it holds now; unchanged fields are left alone); returns a new reference.
    unsafe fn refill(&self, cache: &mut IntCache, t: *mut ffi::PyObject, held: &mut [i64; 16], ev: &Event) -> *mut ffi::PyObject {
        let fields = ev.fields();
        unsafe {
            for (i, &v) in fields.iter().enumerate() {
                if held[i] == v {
                    continue;
                }
                let item = self.int(cache, v);
                if item.is_null() {
                    return item;
                }
                let old = ffi::PyTuple_GET_ITEM(t, i as ffi::Py_ssize_t);
                ffi::PyTuple_SET_ITEM(t, i as ffi::Py_ssize_t, item);
                ffi::Py_DECREF(old);
                held[i] = v;
            }
            ffi::Py_INCREF(t);
        }
        t
    }
}

/// Event tuples and the last list handed out by `submit`, kept for reuse
/// once the caller has let go of them (see [`EventFactory::list`]).
#[derive(Default)]
pub struct ReuseCache {
    /// Each tuple with the field values it holds.
    tuples: Vec<(Py<PyAny>, [i64; 16])>,
    ints: IntCache,
    list: Option<Py<pyo3::types::PyList>>,
}

/// How many event tuples the cache keeps.
const REUSE_TUPLES: usize = 32;

impl ReuseCache {
    /// The last list, emptied to `n` `None`s, if nobody else holds it and it has `n` items.
    unsafe fn take_list<'py>(&mut self, py: Python<'py>, n: ffi::Py_ssize_t) -> Option<Bound<'py, pyo3::types::PyList>> {
        let list = self.list.take()?;
        unsafe {
            let p = list.as_ptr();
            if ffi::Py_REFCNT(p) != 1 || ffi::PyList_GET_SIZE(p) != n {
                return None;
            }
            for i in 0..n {
                let old = ffi::PyList_GET_ITEM(p, i);
                let none = ffi::Py_None();
                ffi::Py_INCREF(none);
                ffi::PyList_SET_ITEM(p, i, none);
                ffi::Py_DECREF(old);
            }
        }
        list.into_bound(py).into_any().cast_into().ok()
    }

    fn keep_list(&mut self, list: &Bound<'_, pyo3::types::PyList>) {
        self.list = Some(list.clone().unbind());
    }

    /// The index of a cached tuple that only the cache references.
    fn free_tuple(&self) -> Option<usize> {
        self.tuples.iter().position(|(t, _)| unsafe { ffi::Py_REFCNT(t.as_ptr()) } == 1)
    }

    /// Keep a new tuple (a new reference is taken) if there is room.
    unsafe fn keep_tuple(&mut self, py: Python<'_>, obj: *mut ffi::PyObject, fields: [i64; 16]) {
        if self.tuples.len() < REUSE_TUPLES {
            // SAFETY: `obj` is a valid object; borrowing it takes a new reference.
            self.tuples.push((unsafe { Bound::from_borrowed_ptr(py, obj) }.unbind(), fields));
        }
    }
}

/// Int objects kept for reuse, direct-mapped by value: the same seq, price,
/// order id or level total appears in several events of a call, and prices
/// recur from call to call. Ints are immutable, so sharing them is invisible.
pub struct IntCache {
    values: Box<[i64; INT_SLOTS]>,
    /// Strong references (as addresses; 0 = empty slot).
    objects: Box<[usize; INT_SLOTS]>,
}

const INT_SLOTS: usize = 1024;

impl Default for IntCache {
    fn default() -> Self {
        IntCache { values: Box::new([0; INT_SLOTS]), objects: Box::new([0; INT_SLOTS]) }
    }
}

impl IntCache {
    /// A new reference to the int `v`, or null with a Python error set.
    #[inline(always)]
    unsafe fn get(&mut self, v: i64) -> *mut ffi::PyObject {
        let i = ((v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % INT_SLOTS;
        let o = self.objects[i];
        unsafe {
            if o != 0 && self.values[i] == v {
                ffi::Py_INCREF(o as *mut ffi::PyObject);
                return o as *mut ffi::PyObject;
            }
            let new = ffi::PyLong_FromLongLong(v);
            if new.is_null() {
                return new;
            }
            if o != 0 {
                ffi::Py_DECREF(o as *mut ffi::PyObject);
            }
            ffi::Py_INCREF(new);
            self.values[i] = v;
            self.objects[i] = new as usize;
            new
        }
    }
}

impl Drop for IntCache {
    fn drop(&mut self) {
        for &o in self.objects.iter() {
            if o != 0 {
                // Caches live in method calls or in an `Engine`, which Python
                // frees while attached to the interpreter.
                unsafe { ffi::Py_DECREF(o as *mut ffi::PyObject) };
            }
        }
    }
}
