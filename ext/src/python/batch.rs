//! The throughput path: NumPy structured arrays in and out, no Python object
//! per command.
//!
//! Input is read in place through the buffer protocol (after checking the
//! dtype is `core.batch.command_dtype()`); a non-contiguous array is copied
//! once with `numpy.ascontiguousarray`.
//!
//! Output: the engine appends events straight into a `Vec<Event>` taken from a
//! small process-wide pool, which then becomes the memory of the returned
//! array (`numpy.frombuffer` over an [`EventBuffer`] that owns the vector); when
//! NumPy frees the array the vector goes back to the pool. A warm pool means
//! no allocation and no page faults on the output side, which at tens of
//! millions of events per second is most of the cost of a fresh allocation.

use std::ffi::{c_int, c_void};
use std::mem::MaybeUninit;
use std::sync::Mutex;

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::types::{Command, Event};

/// Buffers kept for reuse; two cover `out = engine.submit_batch(...)` in a loop
/// (the previous result is still alive while the next one is produced).
const POOL_KEEP: usize = 2;
/// Largest buffer kept (bytes of events); bigger ones are freed.
const POOL_MAX_BYTES: usize = 1 << 31;

static POOL: Mutex<Vec<Vec<Event>>> = Mutex::new(Vec::new());

/// An empty event vector with at least `capacity` room, from the pool if it has one.
pub fn take_buffer(capacity: usize) -> Vec<Event> {
    let reused = {
        let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // The largest buffer first: the most likely to be big enough.
        let best = (0..pool.len()).max_by_key(|&i| pool[i].capacity());
        best.map(|i| pool.swap_remove(i))
    };
    let mut events = reused.unwrap_or_default();
    events.clear();
    if events.capacity() < capacity {
        // (No MADV_HUGEPAGE: with the kernel's default `defrag=madvise`, the
        // first fault of an advised region may stall on compaction for far
        // longer than the 4 KiB faults it saves.)
        events.reserve(capacity);
    }
    events
}

/// Give a buffer back to the pool.
pub fn return_buffer(mut events: Vec<Event>) {
    if events.capacity() == 0 || events.capacity() * std::mem::size_of::<Event>() > POOL_MAX_BYTES {
        return;
    }
    events.clear();
    let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if pool.len() < POOL_KEEP {
        pool.push(events);
    } else if let Some(smallest) = (0..pool.len()).min_by_key(|&i| pool[i].capacity()) {
        if pool[smallest].capacity() < events.capacity() {
            pool[smallest] = events;
        }
    }
}

/// The memory of an events array returned by `submit_batch`.
#[pyclass(module = "rialto_native._native", frozen)]
pub struct EventBuffer {
    events: Vec<Event>,
    ptr: usize,
    bytes: usize,
}

impl EventBuffer {
    pub fn new(events: Vec<Event>) -> EventBuffer {
        let ptr = events.as_ptr() as usize;
        let bytes = events.len() * std::mem::size_of::<Event>();
        EventBuffer { events, ptr, bytes }
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        return_buffer(std::mem::take(&mut self.events));
    }
}

#[pymethods]
impl EventBuffer {
    /// Exposes the events as a writable run of bytes (NumPy puts the dtype on top).
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("View is null"));
        }
        let (ptr, bytes) = {
            let this = slf.get();
            (this.ptr, this.bytes)
        };
        // SAFETY: `view` is the caller's Py_buffer; the vector's heap memory does
        // not move while the buffer object (kept alive by `view.obj`) exists.
        unsafe {
            (*view).obj = slf.into_any().into_ptr();
            (*view).buf = ptr as *mut c_void;
            (*view).len = bytes as ffi::Py_ssize_t;
            (*view).readonly = 0;
            (*view).itemsize = 1;
            (*view).format = if (flags & ffi::PyBUF_FORMAT) == ffi::PyBUF_FORMAT {
                c"B".as_ptr() as *mut _
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape = if (flags & ffi::PyBUF_ND) == ffi::PyBUF_ND { &mut (*view).len } else { std::ptr::null_mut() };
            (*view).strides =
                if (flags & ffi::PyBUF_STRIDES) == ffi::PyBUF_STRIDES { &mut (*view).itemsize } else { std::ptr::null_mut() };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

/// A borrowed, C-contiguous view of a commands array; released on drop.
pub struct CommandView {
    view: Box<MaybeUninit<ffi::Py_buffer>>,
    len: usize,
}

impl CommandView {
    /// Borrow `array`'s memory (the caller has checked its dtype).
    pub fn get(array: &Bound<'_, PyAny>) -> PyResult<CommandView> {
        let mut view: Box<MaybeUninit<ffi::Py_buffer>> = Box::new(MaybeUninit::uninit());
        // SAFETY: a standard buffer request into storage we own; on success the
        // view is released exactly once, in Drop.
        let rc = unsafe { ffi::PyObject_GetBuffer(array.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_C_CONTIGUOUS) };
        if rc != 0 {
            return Err(PyErr::fetch(array.py()));
        }
        let v = unsafe { view.assume_init_ref() };
        let size = std::mem::size_of::<Command>();
        let this = CommandView { len: v.len as usize / size, view };
        let v = unsafe { this.view.assume_init_ref() };
        if v.ndim != 1 || v.itemsize as usize != size || v.len as usize % size != 0 {
            return Err(PyValueError::new_err("commands must be a one-dimensional array of core.batch.command_dtype()"));
        }
        Ok(this)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The `i`-th command (the memory may be unaligned, so it is copied out).
    #[inline(always)]
    pub fn command(&self, i: usize) -> Command {
        debug_assert!(i < self.len);
        // SAFETY: i < len, and the buffer holds len commands of 128 bytes.
        unsafe {
            let base = self.view.assume_init_ref().buf as *const Command;
            std::ptr::read_unaligned(base.add(i))
        }
    }
}

impl Drop for CommandView {
    fn drop(&mut self) {
        // SAFETY: the view was filled by a successful PyObject_GetBuffer; the
        // object that owns it is alive (the view holds a reference) and the
        // interpreter is attached (CommandView never leaves a method call).
        unsafe { ffi::PyBuffer_Release(self.view.as_mut_ptr()) };
    }
}
