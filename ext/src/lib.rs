//! Rialto's matching engine in Rust: the `rust` backend, `rialto_native.Engine`.
//!
//! The pure-Python engine in `core/` is the specification. This crate emits
//! exactly the same events (same order, same fields) and byte-identical
//! snapshots for every command stream, valid or not; `tests/test_differential.py`
//! holds it to that against the reference.
//!
//! Layout
//! ------
//! * [`types`]: the command and event records (`repr(C)`, one NumPy row each),
//!   the enums their fields encode, newtypes ([`types::Price`],
//!   [`types::Quantity`], [`types::OrderId`], [`types::AccountId`]) and an
//!   instrument's limits.
//! * [`index`]: the `i64 -> slot` maps behind every lookup: a direct-mapped
//!   table (order ids, level prices, account ids are dense and clustered)
//!   with a small open-addressing hash map as its spill.
//! * [`book`]: the order slab and one instrument's book (levels with
//!   intrusive FIFO lists, stop lists).
//! * [`risk`]: balances and holds in flat vectors.
//! * [`engine`]: validation, risk checks, matching, self-trade prevention,
//!   stops, amend, expiry, deposits and withdrawals.
//! * [`snapshot`]: the canonical byte layout of `core/snapshot.py`, restore,
//!   and the state hash.
//! * `python` (cargo feature `python`): the PyO3 bindings, the only place
//!   where Python objects and exceptions appear.
//!
//! Invariants
//! ----------
//! * Between commands every live order is either resting in exactly one level
//!   or waiting in exactly one stop list, and is in the id map; nothing else is.
//! * A level's total and count are the sums over its list; empty levels are
//!   removed at the points the reference removes them.
//! * Every balance, hold, notional and supply is within `[0, 2**62]` (see
//!   `types.rs`), so `i64` suffices; fees and the band's width are computed
//!   as `q * bps + r * bps / 10_000` (with `amount = 10_000 q + r`), exactly
//!   the reference's `_fee`, so no product leaves 64 bits.
//! * Events are only appended, each once and final, so a batch's output is a
//!   plain contiguous array.
//!
//! Complexity
//! ----------
//! Passive order, cancel, amend: O(1) plus, when a level opens or empties,
//! finding its place among one side's
//! levels (a few hundred at most in practice). Each fill: O(1). Mass cancel:
//! O(live orders). Snapshot: O(state). No allocation per command once the
//! slabs and buffers are warm.
//!
//! Determinism
//! -----------
//! The id maps (order id -> slot, account id -> slot) are looked up, never
//! iterated, so their hashing and seed cannot change results; everything
//! emitted in an order is kept sorted or in FIFO order. The engine never reads
//! the clock except to measure latency when asked.
//!
//! Known limitations
//! -----------------
//! * Values are `i64`: a command field outside `i64` is refused at the Python
//!   boundary with `OverflowError`, a non-integer one with `TypeError` (the
//!   reference would compare whatever it is given, or skip a replayed
//!   command without looking at its other fields).
//! * `restore` refuses snapshots no running shard can produce (see
//!   [`engine::Engine::restore`]) where the reference would load them as they
//!   are; a snapshot from any backend's real state restores.
//! * Balances are kept for registered assets only; a snapshot with a non-zero
//!   balance of an unregistered asset id is refused.
//! * Throughput: the engine is bound by instruction count and branches, not
//!   memory (look-ahead prefetching did not help). About 600 instructions per
//!   command of the benchmark mix (callgrind, `examples/replay.rs`), spread
//!   thinly: validation, funds, the order and level links, ~2.5 events of
//!   sixteen fields each, ~0.4 trades with their settlement. On the
//!   project's shared 2-core machine `submit_batch` runs the mix at about
//!   14.5 M commands/s, short of the 20 M target. Next steps: a dense price
//!   ladder instead of the sorted level vector, fewer bounds-checked slab
//!   reads, and for `submit` the Python side (building the event tuples and
//!   reading the command take twice the engine's instructions).

pub mod book;
pub mod engine;
pub mod index;
pub mod risk;
pub mod snapshot;
pub mod types;

#[cfg(feature = "python")]
pub mod python;

pub use engine::Engine;
pub use types::{Command, Event, InstrumentSpec};
