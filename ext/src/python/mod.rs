//! Python bindings: `rialto_native._native.Engine`, the `rust` backend of
//! `core.engine`, with exactly the API of `core.matching.ReferenceEngine`.
//!
//! Layout
//! ------
//! * this module: the `Engine` class (`#[pymethods]` are named `py_*`),
//!   argument reading and the mapping of domain errors to exceptions;
//! * `convert`: commands from Python objects, `core.events.Event` instances
//!   built directly on the C API;
//! * `batch`: NumPy arrays in and out through the buffer protocol.
//!
//! Errors
//! ------
//! Domain errors (`thiserror` enums) become Python exceptions only here:
//! [`RialtoError`] (a `ValueError`) for a refused instrument or snapshot,
//! `KeyError` for an unknown symbol (as the reference's dict lookups),
//! `OverflowError` / `TypeError` for a command field that is not an `i64`.
//! Every call into the engine runs under `catch_unwind`, so even a bug cannot
//! unwind into the interpreter: it surfaces as `RuntimeError`.

mod batch;
mod convert;

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyIndexError, PyKeyError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList};

use crate::engine::Engine;
use crate::snapshot::SnapshotError;
use crate::types::{InstrumentError, InstrumentSpec};

use batch::{CommandView, EventBuffer};
use convert::{command_from_py, int_checked, int_saturating, EventFactory, ReuseCache};

pyo3::create_exception!(
    _native,
    RialtoError,
    PyValueError,
    "A request the Rust engine refuses: a bad instrument, a malformed snapshot."
);

impl From<InstrumentError> for PyErr {
    fn from(err: InstrumentError) -> PyErr {
        RialtoError::new_err(err.to_string())
    }
}

impl From<SnapshotError> for PyErr {
    fn from(err: SnapshotError) -> PyErr {
        RialtoError::new_err(err.to_string())
    }
}

static EVENTS: PyOnceLock<EventFactory> = PyOnceLock::new();
static NUMPY: PyOnceLock<NumpyBits> = PyOnceLock::new();

fn events(py: Python<'_>) -> PyResult<&'static EventFactory> {
    EVENTS.get_or_try_init(py, || EventFactory::new(py))
}

/// What the batch path needs from NumPy and `core.batch`.
struct NumpyBits {
    command_dtype: Py<PyAny>,
    event_dtype: Py<PyAny>,
    frombuffer: Py<PyAny>,
    ascontiguousarray: Py<PyAny>,
    int64: Py<PyAny>,
}

fn numpy(py: Python<'_>) -> PyResult<&'static NumpyBits> {
    NUMPY.get_or_try_init(py, || {
        let np = py.import("numpy")?;
        let core_batch = py.import("core.batch")?;
        Ok::<_, PyErr>(NumpyBits {
            command_dtype: core_batch.getattr("command_dtype")?.call0()?.unbind(),
            event_dtype: core_batch.getattr("event_dtype")?.call0()?.unbind(),
            frombuffer: np.getattr("frombuffer")?.unbind(),
            ascontiguousarray: np.getattr("ascontiguousarray")?.unbind(),
            int64: np.getattr("int64")?.unbind(),
        })
    })
}

/// Run engine code; a panic (a bug) becomes a `RuntimeError`, never an unwind into Python.
#[inline(always)]
fn guarded<T>(f: impl FnOnce() -> T) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        PyRuntimeError::new_err(format!("internal error in the Rust engine: {what}"))
    })
}

fn attr_i64(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<i64> {
    obj.getattr(name)?.extract::<i64>()
}

/// One engine shard (see `core.engine.MatchingEngine`).
#[pyclass(name = "Engine", module = "rialto_native._native")]
pub struct PyEngine {
    engine: Engine,
    latencies: Vec<i64>,
    reuse: ReuseCache,
}

#[pymethods]
impl PyEngine {
    #[new]
    fn py_new() -> Self {
        PyEngine { engine: Engine::new(), latencies: Vec::new(), reuse: ReuseCache::default() }
    }

    /// The backend name in `core.engine.BACKENDS`.
    #[classattr]
    #[pyo3(name = "backend")]
    fn py_backend() -> &'static str {
        "rust"
    }

    /// Register an instrument (a `core.instrument.Instrument`, read by attribute).
    #[pyo3(name = "add_instrument")]
    fn py_add_instrument(&mut self, instrument: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = attr_i64(instrument, "id")?;
        if self.engine.book_index(id).is_some() {
            return Err(PyValueError::new_err(format!("instrument id {id} is already registered")));
        }
        let spec = InstrumentSpec {
            id,
            base: attr_i64(&instrument.getattr("base")?, "id")?,
            quote: attr_i64(&instrument.getattr("quote")?, "id")?,
            base_per_lot: attr_i64(instrument, "base_per_lot")?,
            quote_per_tick_lot: attr_i64(instrument, "quote_per_tick_lot")?,
            min_quantity: attr_i64(instrument, "min_quantity")?,
            max_quantity: attr_i64(instrument, "max_quantity")?,
            max_price: attr_i64(instrument, "max_price")?,
            price_band_bps: attr_i64(instrument, "price_band_bps")?,
            maker_fee_bps: attr_i64(instrument, "maker_fee_bps")?,
            taker_fee_bps: attr_i64(instrument, "taker_fee_bps")?,
            reference_price: attr_i64(instrument, "reference_price")?,
        };
        guarded(|| self.engine.add_instrument(spec))??;
        Ok(())
    }

    /// The last applied command's sequence number.
    #[getter]
    #[pyo3(name = "sequence")]
    fn py_sequence(&self) -> i64 {
        self.engine.sequence()
    }

    /// Apply one command; return the events it caused, in order.
    #[pyo3(name = "submit")]
    fn py_submit<'py>(&mut self, py: Python<'py>, command: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let factory = events(py)?;
        let c = command_from_py(py, command)?;
        let engine = &mut self.engine;
        let events = guarded(|| engine.submit(&c).len())?;
        factory.list(py, &engine.events()[..events], Some(&mut self.reuse))
    }

    /// Apply commands in order; return all their events.
    #[pyo3(name = "submit_many")]
    fn py_submit_many<'py>(&mut self, py: Python<'py>, commands: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let factory = events(py)?;
        self.engine.out.events.clear();
        for command in commands.try_iter()? {
            let c = command_from_py(py, &command?)?;
            let engine = &mut self.engine;
            guarded(|| engine.process(&c))?;
        }
        let list = factory.list(py, self.engine.events(), None);
        self.engine.out.events.clear();
        list
    }

    /// NumPy structured array of commands in, structured array of events out.
    ///
    /// With `record_latency=True`, each command's processing time (ns,
    /// measured in Rust around the command) is kept for `batch_latencies()`.
    #[pyo3(name = "submit_batch", signature = (commands, record_latency = false))]
    fn py_submit_batch<'py>(
        &mut self,
        py: Python<'py>,
        commands: &Bound<'py, PyAny>,
        record_latency: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let np = numpy(py)?;
        let dtype_ok = match commands.getattr("dtype") {
            Ok(dtype) => dtype.eq(np.command_dtype.bind(py))?,
            Err(_) => false,
        };
        if !dtype_ok {
            return Err(PyValueError::new_err("commands must be a structured array of core.batch.command_dtype()"));
        }
        let view = match CommandView::get(commands) {
            Ok(view) => view,
            Err(_) => {
                let contiguous = np.ascontiguousarray.bind(py).call1((commands,))?;
                CommandView::get(&contiguous)?
            }
        };
        let n = view.len();
        self.latencies.clear();
        // Room for the usual ~2 events per command without regrowing; more grows.
        let capacity = (n.saturating_mul(3) + 1024).min(1 << 24);
        let mut out = batch::take_buffer(capacity);
        std::mem::swap(&mut out, &mut self.engine.out.events);
        let engine = &mut self.engine;
        let latencies = &mut self.latencies;
        engine.out.set_streaming(true);
        let result = guarded(|| {
            engine.process_batch(n, |i| view.command(i), record_latency.then_some(latencies));
        });
        self.engine.out.finish_streaming();
        drop(view);
        std::mem::swap(&mut out, &mut self.engine.out.events);
        result?;
        let buffer = Bound::new(py, EventBuffer::new(out))?;
        np.frombuffer.bind(py).call1((buffer, np.event_dtype.bind(py)))
    }

    /// Per-command processing times (ns) of the last `submit_batch` run with
    /// `record_latency=True` (empty if the last batch did not record them).
    #[pyo3(name = "batch_latencies")]
    fn py_batch_latencies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let np = numpy(py)?;
        let bytes: Vec<u8> = self.latencies.iter().flat_map(|v| v.to_le_bytes()).collect();
        let data = pyo3::types::PyByteArray::new(py, &bytes);
        np.frombuffer.bind(py).call1((data, np.int64.bind(py)))
    }

    /// `(available, held)` of an asset for an account.
    #[pyo3(name = "balance")]
    fn py_balance(&self, py: Python<'_>, account: &Bound<'_, PyAny>, asset: &Bound<'_, PyAny>) -> PyResult<(i64, i64)> {
        let Ok(account) = int_checked(py, account, "account")? else {
            return Ok((0, 0)); // no account outside the i64 range can exist
        };
        let asset = match int_checked(py, asset, "asset")? {
            Ok(asset) => asset,
            Err(std::cmp::Ordering::Greater) => i64::MAX, // past every asset: (0, 0)
            Err(_) => i64::MIN,                          // a list index before the start
        };
        self.engine.balance(account, asset).map_err(|e| PyIndexError::new_err(e.to_string()))
    }

    /// Best `levels` levels per side as `(price, total quantity, orders)`, best first.
    #[pyo3(name = "depth", signature = (symbol, levels = None))]
    #[allow(clippy::type_complexity, reason = "the (bids, asks) shape of the Python API")]
    fn py_depth(
        &self,
        py: Python<'_>,
        symbol: &Bound<'_, PyAny>,
        levels: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Vec<(i64, i64, i64)>, Vec<(i64, i64, i64)>)> {
        let levels = match levels {
            Some(levels) => int_saturating(py, levels, "levels")?,
            None => 10,
        };
        let id = int_saturating(py, symbol, "symbol")?;
        self.engine.depth(id, levels).ok_or_else(|| PyKeyError::new_err(symbol.clone().unbind()))
    }

    /// The last trade price of a symbol (0 before its first trade).
    #[pyo3(name = "last_price")]
    fn py_last_price(&self, py: Python<'_>, symbol: &Bound<'_, PyAny>) -> PyResult<i64> {
        let id = int_saturating(py, symbol, "symbol")?;
        self.engine.last_price(id).ok_or_else(|| PyKeyError::new_err(symbol.clone().unbind()))
    }

    /// The shard's state in the canonical layout of `core.snapshot`.
    #[pyo3(name = "snapshot")]
    fn py_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let data = guarded(|| self.engine.snapshot())?;
        Ok(PyBytes::new(py, &data))
    }

    /// Replace the state with a snapshot from any backend (same instruments registered).
    #[pyo3(name = "restore")]
    fn py_restore(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes: Vec<u8> = if let Ok(b) = data.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else {
            let buffer = pyo3::buffer::PyBuffer::<u8>::get(data)
                .map_err(|_| RialtoError::new_err("a snapshot must be bytes or a bytes-like object"))?;
            buffer.to_vec(data.py())?
        };
        let engine = &mut self.engine;
        guarded(|| engine.restore(&bytes))??;
        Ok(())
    }

    /// BLAKE2b-128 of the snapshot, hex (equal across backends exactly when their states are).
    #[pyo3(name = "state_hash")]
    fn py_state_hash(&self) -> PyResult<String> {
        guarded(|| self.engine.state_hash())
    }

    fn __repr__(&self) -> String {
        format!("<rialto_native.Engine backend='rust' sequence={}>", self.engine.sequence())
    }
}

/// The extension module `rialto_native._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    convert::init_fast_ints(m.py());
    m.add_class::<PyEngine>()?;
    m.add_class::<EventBuffer>()?;
    m.add("RialtoError", m.py().get_type::<RialtoError>())?;
    Ok(())
}
