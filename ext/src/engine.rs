//! The engine: one shard's deterministic state machine, a transcription of
//! `core/matching.py` (the specification) onto the structures of `book.rs`
//! and `risk.rs`.
//!
//! The pipeline for one command
//! ----------------------------
//! 1. Skip it if its sequence is not above the shard's (replays are idempotent).
//! 2. `time = max(time, command.time)`; expire GTD orders whose time has come.
//! 3. Apply it. A new order is validated (the first failing rule gives the
//!    reason, in the reference's order), funds are reserved, ACCEPTED, then it
//!    matches and rests, or waits as a stop. Cancel, amend, mass cancel,
//!    deposit, withdraw, tick; anything else is rejected as UNKNOWN_COMMAND.
//! 4. After a new order or a moved amend, fire the stops the last trade price
//!    has reached, earliest placed first, until none is left (a cascade runs
//!    inside the one command).
//!
//! Events are appended to [`Engine::events`]; `index` counts from the first
//! event of the command. The Python binding clears the buffer per `submit`
//! and lets a whole batch accumulate for `submit_batch`.
//!
//! Complexity
//! ----------
//! New passive order, cancel, amend: O(1) (order ids and level prices are
//! found through direct-mapped tables) plus, when a level is created or
//! emptied, finding its place among the side's sorted levels (a short walk
//! back from the touch, a binary search beyond it). Matching: O(1)
//! per fill. Stop checks after an order: O(1) when no stop is reached (the
//! stop lists are sorted by trigger). Expiry: O(log n) per GTD order (a
//! binary heap). Mass cancel: O(live orders) (as in the reference, an
//! operator's panic button, not a hot path).
//!
//! Determinism
//! -----------
//! The id -> slot and account -> slot maps (`index::DirectMap`: direct-mapped
//! tables with an unseeded hash-map spill) are only ever looked up, never
//! iterated, so their layout cannot change an event or a snapshot. Everything that
//! is output in an order is kept in that order (FIFO lists, sorted level and
//! stop vectors) or sorted explicitly (mass cancel by id, snapshot accounts by
//! id, books by symbol). No wall-clock time is read except to measure latency.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::book::{Book, Order, OrderCold, OrderSlab, NIL};
use crate::index::DirectMap;
use crate::risk::Balances;
use crate::types::{
    command_kind as ck, event_kind as ek, reason as r, AccountId, Command, Event, InstrumentError, InstrumentSpec,
    bps_of, OrderId, OrderType, Price, Quantity, Side, Stp, TimeInForce, MAX_AMOUNT,
};

/// An instrument as the engine keeps it: its limits and its assets' indices.
#[derive(Clone, Copy, Debug)]
pub struct Market {
    pub spec: InstrumentSpec,
    pub base: u32,
    pub quote: u32,
}

impl Market {
    /// The asset an order on `side` pays with (and holds).
    #[inline(always)]
    fn pay_asset(&self, side: Side) -> u32 {
        [self.quote, self.base][side as usize]
    }
}

/// Buckets of the order-id table (16 bytes each).
pub const ID_BUCKETS: usize = 1 << 16;

/// A matching limit: `None` is the reference's `_NO_LIMIT` (no band).
type Limit = Option<i64>;

/// The event buffer and the position of the current command's first event.
#[derive(Debug, Default)]
pub struct Out {
    pub events: Vec<Event>,
    base: usize,
    seq: i64,
    /// Write events with non-temporal stores (see [`Out::set_streaming`]).
    stream: bool,
}

impl Out {
    #[inline(always)]
    fn begin(&mut self, seq: i64) {
        self.base = self.events.len();
        self.seq = seq;
    }

    /// Batch mode: events go to memory with non-temporal (streaming) stores.
    ///
    /// A batch writes hundreds of megabytes of events that nothing reads
    /// until the batch is over; ordinary stores would first read each line
    /// (doubling the memory traffic) and push the book out of the caches.
    /// Call [`Out::finish_streaming`] before the events are read.
    pub fn set_streaming(&mut self, on: bool) {
        self.stream = on;
    }

    /// Order the streamed stores before anything that follows.
    pub fn finish_streaming(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `sfence` has no operands and only orders stores.
        unsafe {
            std::arch::x86_64::_mm_sfence();
        }
        self.stream = false;
    }

    #[inline(always)]
    fn write(&mut self, event: Event) {
        #[cfg(target_arch = "x86_64")]
        if self.stream {
            let f = event.fields();
            self.stream_fields(&f);
            return;
        }
        self.events.push(event);
    }

    /// Stream one event's sixteen fields straight from registers (no copy of
    /// the record through the stack).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn stream_fields(&mut self, f: &[i64; 16]) {
        if self.events.len() == self.events.capacity() {
            self.events.reserve(self.events.len().max(1024));
        }
        let len = self.events.len();
        // SAFETY: there is room for one more event (reserved above); the slot
        // is 64-byte aligned (`Event` is `align(64)`), more than the 8-byte
        // streaming stores need; all 128 bytes are written before `set_len`
        // makes the slot part of the vector.
        unsafe {
            // One `movnti` per field straight from its register, at a fixed
            // offset from one base register: half the instructions of pairing
            // registers into 16-byte vectors (`_mm_stream_si128`), and
            // `_mm_stream_si64` cannot fold the offset into its address.
            let dst = self.events.as_mut_ptr().add(len) as *mut i64;
            std::arch::asm!(
                "movnti qword ptr [{p}], {a}",
                "movnti qword ptr [{p} + 8], {b}",
                "movnti qword ptr [{p} + 16], {c}",
                "movnti qword ptr [{p} + 24], {d}",
                "movnti qword ptr [{p} + 32], {e}",
                "movnti qword ptr [{p} + 40], {f}",
                "movnti qword ptr [{p} + 48], {g}",
                "movnti qword ptr [{p} + 56], {h}",
                p = in(reg) dst,
                a = in(reg) f[0], b = in(reg) f[1], c = in(reg) f[2], d = in(reg) f[3],
                e = in(reg) f[4], f = in(reg) f[5], g = in(reg) f[6], h = in(reg) f[7],
                options(nostack, preserves_flags),
            );
            std::arch::asm!(
                "movnti qword ptr [{p} + 64], {a}",
                "movnti qword ptr [{p} + 72], {b}",
                "movnti qword ptr [{p} + 80], {c}",
                "movnti qword ptr [{p} + 88], {d}",
                "movnti qword ptr [{p} + 96], {e}",
                "movnti qword ptr [{p} + 104], {f}",
                "movnti qword ptr [{p} + 112], {g}",
                "movnti qword ptr [{p} + 120], {h}",
                p = in(reg) dst,
                a = in(reg) f[8], b = in(reg) f[9], c = in(reg) f[10], d = in(reg) f[11],
                e = in(reg) f[12], f = in(reg) f[13], g = in(reg) f[14], h = in(reg) f[15],
                options(nostack, preserves_flags),
            );
            self.events.set_len(len + 1);
        }
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the reference's _emit signature field for field")]
    #[inline(always)]
    fn emit(
        &mut self,
        kind: i64,
        symbol: i64,
        order_id: i64,
        account: i64,
        side: i64,
        price: i64,
        quantity: i64,
        leaves: i64,
        reason: i64,
    ) {
        let index = (self.events.len() - self.base) as i64;
        self.write(Event {
            kind,
            seq: self.seq,
            index,
            symbol,
            order_id,
            account,
            side,
            price,
            quantity,
            leaves,
            maker_order_id: 0,
            maker_account: 0,
            maker_leaves: 0,
            taker_fee: 0,
            maker_fee: 0,
            reason,
        });
    }

    #[inline(always)]
    fn push(&mut self, mut event: Event) {
        event.seq = self.seq;
        event.index = (self.events.len() - self.base) as i64;
        self.write(event);
    }

    #[inline(always)]
    fn level(&mut self, symbol: i64, side: Side, price: Price, total: i64) {
        self.emit(ek::BOOK, symbol, 0, 0, side.code(), price.0, total, 0, 0);
    }

    #[inline(always)]
    fn reject(&mut self, c: &Command, order_id: i64, reason: i64) {
        self.emit(ek::REJECTED, c.symbol, order_id, c.account, c.side, c.price, c.quantity, 0, reason);
    }

    /// Reject an amend of a known order: the event names the order's symbol.
    fn reject_for(&mut self, c: &Command, symbol: i64, reason: i64) {
        self.emit(ek::REJECTED, symbol, c.order_id, c.account, c.side, c.price, c.quantity, 0, reason);
    }
}

/// Why `balance` cannot answer (the reference's negative list index past the start).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("asset index out of range")]
pub struct AssetIndexError;

/// One engine shard.
#[derive(Debug)]
pub struct Engine {
    pub(crate) markets: Vec<Market>,
    pub(crate) books: Vec<Book>,
    /// Symbol -> book index + 1 (0: unknown).
    book_of: Vec<u32>,
    pub(crate) orders: OrderSlab,
    /// Order id -> slot of every live order (resting or waiting stop).
    /// Ids are sequence numbers, so a direct-mapped table serves them; only an
    /// order that outlives [`ID_BUCKETS`] later ids' worth of commands can
    /// share a bucket and go to the table's spill map.
    pub(crate) ids: DirectMap,
    pub(crate) balances: Balances,
    /// `(expire time, order id)` of GTD orders; stale entries are skipped.
    pub(crate) expiries: BinaryHeap<Reverse<(i64, i64)>>,
    pub(crate) seq: i64,
    pub(crate) time: i64,
    /// Events of the current command (or batch).
    pub out: Out,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    pub fn new() -> Engine {
        Engine {
            markets: Vec::new(),
            books: Vec::new(),
            book_of: Vec::new(),
            orders: OrderSlab::default(),
            ids: DirectMap::with_buckets(ID_BUCKETS),
            balances: Balances::new(),
            expiries: BinaryHeap::new(),
            seq: 0,
            time: 0,
            out: Out::default(),
        }
    }

    // Set-up and reads --------------------------------------------------------

    pub fn add_instrument(&mut self, spec: InstrumentSpec) -> Result<(), InstrumentError> {
        if self.book_index(spec.id).is_some() {
            return Err(InstrumentError::Duplicate(spec.id));
        }
        spec.validate()?;
        let base = self.balances.add_asset(spec.base);
        let quote = self.balances.add_asset(spec.quote);
        let index = self.books.len() as u32;
        self.markets.push(Market { spec, base, quote });
        self.books.push(Book::new(spec.id, spec.price_band_bps, spec.reference_price));
        if self.book_of.len() <= spec.id as usize {
            self.book_of.resize(spec.id as usize + 1, 0);
        }
        self.book_of[spec.id as usize] = index + 1;
        Ok(())
    }

    #[inline(always)]
    pub fn book_index(&self, symbol: i64) -> Option<usize> {
        if symbol <= 0 || symbol as usize >= self.book_of.len() {
            return None;
        }
        match self.book_of[symbol as usize] {
            0 => None,
            i => Some(i as usize - 1),
        }
    }

    /// Book indices by ascending symbol.
    pub(crate) fn books_by_symbol(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.books.len()).collect();
        idx.sort_unstable_by_key(|&i| self.books[i].symbol);
        idx
    }

    pub fn sequence(&self) -> i64 {
        self.seq
    }

    pub fn time(&self) -> i64 {
        self.time
    }

    /// `(available, held)` as `ReferenceEngine.balance` answers it, including
    /// its list-index reading of a negative asset id for an existing account.
    pub fn balance(&self, account: i64, asset: i64) -> Result<(i64, i64), AssetIndexError> {
        let account = AccountId(account);
        if self.balances.slot(account).is_none() || asset >= self.balances.asset_slots {
            return Ok((0, 0));
        }
        let asset = if asset < 0 { asset + self.balances.asset_slots } else { asset };
        if asset < 0 {
            return Err(AssetIndexError);
        }
        Ok(self.balances.balance(account, asset))
    }

    /// Best `levels` levels per side as `(price, total, orders)`, best first;
    /// `None` for an unknown symbol. A negative `levels` drops that many from
    /// the end, as a Python slice does.
    #[allow(clippy::type_complexity, reason = "the (bids, asks) shape of the Python API")]
    pub fn depth(&self, symbol: i64, levels: i64) -> Option<(Vec<(i64, i64, i64)>, Vec<(i64, i64, i64)>)> {
        let book = &self.books[self.book_index(symbol)?];
        let take = |side: &crate::book::BookSide| {
            let n = side.keys.len() as i64;
            let k = if levels >= 0 { levels.min(n) } else { (n + levels).max(0) };
            side.levels_best_first().take(k as usize).map(|l| (l.price.0, l.total, l.count)).collect()
        };
        Some((take(book.bids()), take(book.asks())))
    }

    pub fn last_price(&self, symbol: i64) -> Option<i64> {
        Some(self.books[self.book_index(symbol)?].last_price.0)
    }

    /// The events appended since the buffer was last cleared.
    pub fn events(&self) -> &[Event] {
        &self.out.events
    }

    /// Apply one command and return its events.
    pub fn submit(&mut self, c: &Command) -> &[Event] {
        self.out.events.clear();
        self.process(c);
        &self.out.events
    }

    // Commands -------------------------------------------------------------

    /// Apply a batch of commands (`get(i)` for `i < n`), appending their
    /// events; with `latencies`, each command's processing time (ns) is pushed.
    ///
    /// (Look-ahead cache prefetching of the orders and levels later commands
    /// touch was tried here and made batches slower: the book's working set
    /// stays in L2, and the cost is instructions and branches, not misses.)
    pub fn process_batch(&mut self, n: usize, get: impl Fn(usize) -> Command, latencies: Option<&mut Vec<i64>>) {
        match latencies {
            Some(out) => {
                out.reserve(n);
                for i in 0..n {
                    let c = get(i);
                    let start = std::time::Instant::now();
                    self.process(&c);
                    out.push(start.elapsed().as_nanos() as i64);
                }
            }
            None => {
                for i in 0..n {
                    self.process(&get(i));
                }
            }
        }
    }

    /// Apply one command, appending its events to the buffer.
    #[inline]
    pub fn process(&mut self, c: &Command) {
        if c.seq <= self.seq {
            return;
        }
        self.seq = c.seq;
        if c.time > self.time {
            self.time = c.time;
        }
        self.out.begin(c.seq);
        if let Some(Reverse((at, _))) = self.expiries.peek() {
            if *at <= self.time {
                self.expire();
            }
        }
        match c.kind {
            ck::NEW_ORDER => self.new_order(c),
            ck::CANCEL => self.cancel(c),
            ck::AMEND => self.amend(c),
            ck::MASS_CANCEL => self.mass_cancel(c),
            ck::DEPOSIT => self.deposit(c),
            ck::WITHDRAW => self.withdraw(c),
            ck::TICK => {}
            _ => self.out.reject(c, c.order_id, r::UNKNOWN_COMMAND),
        }
    }

    /// The reason the first failing rule gives, or 0. The order of the rules is part of the spec.
    fn validate(&self, c: &Command, b: Option<usize>) -> i64 {
        let Some(b) = b else {
            return r::UNKNOWN_SYMBOL;
        };
        let spec = &self.markets[b].spec;
        if c.account <= 0 {
            return r::INVALID_ACCOUNT;
        }
        if c.side != 0 && c.side != 1 {
            return r::INVALID_SIDE;
        }
        let Some(otype) = OrderType::from_code(c.order_type) else {
            return r::INVALID_ORDER_TYPE;
        };
        let is_market = otype.is_market();
        let tif = c.time_in_force;
        let (ioc, fok) = (TimeInForce::Ioc.code(), TimeInForce::Fok.code());
        if !(0..=3).contains(&tif) || (is_market && tif != ioc && tif != fok) {
            return r::INVALID_TIME_IN_FORCE;
        }
        if !(0..=4).contains(&c.stp) {
            return r::INVALID_STP;
        }
        if c.post_only != 0 && (c.post_only != 1 || is_market || tif == ioc || tif == fok) {
            return r::INVALID_POST_ONLY;
        }
        if is_market && c.side == Side::Buy.code() && c.quantity == 0 && c.quote_quantity > 0 {
            if c.quote_quantity > MAX_AMOUNT {
                return r::INVALID_QUANTITY;
            }
            if tif != ioc {
                return r::INVALID_TIME_IN_FORCE;
            }
            if c.stp == Stp::Decrement.code() {
                return r::INVALID_STP;
            }
        } else if c.quote_quantity != 0 || c.quantity < spec.min_quantity || c.quantity > spec.max_quantity {
            return r::INVALID_QUANTITY;
        }
        if is_market {
            if c.price != 0 {
                return r::INVALID_PRICE;
            }
        } else if c.price < 1 || c.price > spec.max_price {
            return r::INVALID_PRICE;
        }
        if otype.is_stop() {
            if c.stop_price < 1 || c.stop_price > spec.max_price {
                return r::INVALID_STOP_PRICE;
            }
        } else if c.stop_price != 0 {
            return r::INVALID_STOP_PRICE;
        }
        if tif == TimeInForce::Gtd.code() {
            if c.expire_time <= self.time {
                return r::INVALID_EXPIRE_TIME;
            }
        } else if c.expire_time != 0 {
            return r::INVALID_EXPIRE_TIME;
        }
        if otype == OrderType::Limit {
            let book = &self.books[b];
            let price = Price(c.price);
            if !book.in_band(price) {
                return r::PRICE_OUT_OF_BAND;
            }
            if c.post_only != 0 && book.would_cross(if c.side == 0 { Side::Buy } else { Side::Sell }, price) {
                return r::POST_ONLY_WOULD_TRADE;
            }
        }
        0
    }

    /// What a valid order reserves on acceptance, or -1 if the account cannot pay.
    ///
    /// A sell reserves its base quantity; a limit buy its quantity at its limit;
    /// a buy by quote amount that amount; a market buy by quantity everything
    /// available (its budget, refunded when it ends); a stop-market buy by
    /// quantity nothing until it triggers.
    fn initial_hold(&self, c: &Command, acct: Option<u32>, m: &Market, side: Side, otype: OrderType) -> i64 {
        let available = |asset: u32| acct.map_or(0, |slot| self.balances.available_at(slot, asset));
        let (asset, need) = match side {
            Side::Sell => (m.base, Quantity(c.quantity).base_units(m.spec.base_per_lot)),
            Side::Buy => {
                let asset = m.quote;
                if matches!(otype, OrderType::Limit | OrderType::StopLimit) {
                    (asset, Quantity(c.quantity).notional(Price(c.price), m.spec.quote_per_tick_lot))
                } else if c.quote_quantity != 0 {
                    (asset, c.quote_quantity)
                } else if otype == OrderType::Market {
                    let need = available(asset);
                    return if need > 0 { need } else { -1 };
                } else {
                    return 0;
                }
            }
        };
        if need <= available(asset) {
            need
        } else {
            -1
        }
    }

    fn new_order(&mut self, c: &Command) {
        let b = self.book_index(c.symbol);
        let order_id = c.seq;
        let why = self.validate(c, b);
        if why != 0 {
            self.out.reject(c, order_id, why);
            return;
        }
        let Some(b) = b else { return };
        // Validated above: these cannot fail.
        let side = if c.side == 0 { Side::Buy } else { Side::Sell };
        let (Some(otype), Some(tif), Some(stp)) = (
            OrderType::from_code(c.order_type),
            TimeInForce::from_code(c.time_in_force),
            Stp::from_code(c.stp),
        ) else {
            return;
        };
        let account = AccountId(c.account);
        let acct = self.balances.slot(account);
        let hold = self.initial_hold(c, acct, &self.markets[b], side, otype);
        if hold < 0 {
            self.out.reject(c, order_id, r::INSUFFICIENT_FUNDS);
            return;
        }
        // Only a stop-market buy by quantity (which holds nothing yet) can be
        // accepted for an account with no balances; give it a slot.
        let acct = match acct {
            Some(slot) => slot,
            None => self.balances.slot_or_create(account),
        };
        if hold != 0 {
            self.balances.hold(acct, self.markets[b].pay_asset(side), hold);
        }
        let order = Order {
            prev: NIL,
            next: NIL,
            level: NIL,
            acct,
            leaves: Quantity(c.quantity),
            hold,
            price: Price(c.price),
            id: OrderId(order_id),
            account,
            book: b as u16,
            side,
            order_type: otype,
            time_in_force: tif,
            stp,
            post_only: c.post_only != 0,
            triggered: false,
        };
        let cold = OrderCold::new(Quantity(c.quantity), c.quote_quantity, Price(c.stop_price), c.expire_time);
        let slot = self.orders.alloc(order, cold);
        self.ids.insert_new(order_id, slot);
        self.out.emit(ek::ACCEPTED, c.symbol, order_id, c.account, c.side, c.price, c.quantity, c.quantity, 0);
        if tif == TimeInForce::Gtd {
            self.expiries.push(Reverse((c.expire_time, order_id)));
        }
        if otype.is_stop() {
            self.books[b].add_stop(side, Price(c.stop_price), OrderId(order_id));
        } else if otype == OrderType::Limit
            && matches!(tif, TimeInForce::Gtc | TimeInForce::Gtd)
            && !self.books[b].would_cross(side, Price(c.price))
        {
            // The common case, done here as `execute` would do it: a GTC or
            // GTD limit order that does not cross rests at once.
            let bs = self.books[b].side_mut(side);
            let lv = bs.push_back(&mut self.orders, slot);
            let level = &bs.levels[lv as usize];
            self.out.level(c.symbol, side, level.price, level.total);
        } else {
            self.execute(b, slot);
        }
        self.fire_stops(b);
    }

    /// Match a live order against the book, then rest or cancel what is left.
    fn execute(&mut self, b: usize, t: u32) {
        let (side, otype, tif) = {
            let o = &self.orders[t];
            (o.side, o.order_type, o.time_in_force)
        };
        let is_market = otype.is_market();
        let limit: Limit = if is_market {
            self.books[b].market_limit(side)
        } else {
            Some(self.orders[t].price.0)
        };
        if tif == TimeInForce::Fok && !self.fillable(b, t, limit) {
            self.end(b, t, r::FILL_OR_KILL);
            return;
        }
        // A limit order that does not cross cannot trade: matching would stop
        // at once with nothing done, so skip it (the common, passive case).
        let crosses = is_market || self.books[b].would_cross(side, self.orders[t].price);
        let stopped = if crosses { self.match_order(b, t, limit) } else { 0 };
        let quantity = self.orders.cold(t).quantity;
        let leaves = self.orders[t].leaves;
        let book = &self.books[b];
        if quantity.0 == 0 {
            // A buy by quote amount is complete once it has traded and what is
            // left cannot buy another lot, or nothing is left; one that could
            // not afford even its first lot is cancelled for want of funds.
            let hold = self.orders[t].hold;
            let traded = hold < self.orders.cold(t).quote_quantity;
            if stopped == -1 {
                self.end(b, t, if traded { -1 } else { r::INSUFFICIENT_FUNDS });
            } else if stopped == 0 && hold == 0 {
                self.end(b, t, -1);
            } else {
                let why = if stopped != 0 {
                    stopped
                } else if limit.is_some() && !book.asks().is_empty() {
                    r::PRICE_OUT_OF_BAND
                } else {
                    r::IMMEDIATE_OR_CANCEL
                };
                self.end(b, t, why);
            }
        } else if leaves.0 == 0 {
            self.end(b, t, -1);
        } else if stopped != 0 {
            self.end(b, t, stopped);
        } else if is_market {
            let opposite = book.side(side.opposite());
            let why = if limit.is_some() && !opposite.is_empty() {
                r::PRICE_OUT_OF_BAND
            } else {
                r::IMMEDIATE_OR_CANCEL
            };
            self.end(b, t, why);
        } else if matches!(tif, TimeInForce::Ioc | TimeInForce::Fok) {
            self.end(b, t, r::IMMEDIATE_OR_CANCEL);
        } else {
            let book = &mut self.books[b];
            let bs = book.side_mut(side);
            let lv = bs.push_back(&mut self.orders, t);
            let level = bs.levels[lv as usize];
            self.out.level(book.symbol, side, level.price, level.total);
        }
    }

    /// Finish an order that will not rest: cancel what is open (unless `why`
    /// is -1: it is done), return any unused hold, forget it.
    #[inline(always)]
    fn end(&mut self, b: usize, t: u32, why: i64) {
        let symbol = self.books[b].symbol;
        let o = &self.orders[t];
        if why != -1 {
            self.out.emit(
                ek::CANCELLED,
                symbol,
                o.id.0,
                o.account.0,
                o.side.code(),
                o.price.0,
                o.leaves.0,
                0,
                why,
            );
        }
        if o.hold != 0 {
            let asset = self.markets[b].pay_asset(o.side);
            self.balances.release(o.acct, asset, o.hold);
        }
        self.ids.remove(o.id.0);
        self.orders.release(t);
    }

    /// Would a fill-or-kill order fill completely right now?
    ///
    /// Own orders count only where they would trade (no self-trade prevention)
    /// or be cleared out of the way (cancel oldest); any other prevention mode
    /// stops the fill at them.
    fn fillable(&self, b: usize, t: u32, limit: Limit) -> bool {
        let taker = &self.orders[t];
        let qpt = self.markets[b].spec.quote_per_tick_lot;
        let opposite = self.books[b].side(taker.side.opposite());
        let sign = opposite.sign;
        let limit_key = limit.map_or(i64::MIN, |l| l * sign);
        let mut need = taker.leaves.0;
        let mut budget = if taker.side == Side::Buy && !matches!(taker.order_type, OrderType::Limit | OrderType::StopLimit) {
            taker.hold
        } else {
            -1
        };
        let (account, stp) = (taker.account, taker.stp);
        for &(key, lv) in opposite.keys.iter().rev() {
            if key < limit_key {
                return false;
            }
            let price = key * sign;
            for m in opposite.level_orders(&self.orders, lv) {
                let maker = &self.orders[m];
                if maker.account == account && stp != Stp::None {
                    if stp == Stp::CancelOldest {
                        continue;
                    }
                    return false;
                }
                let qty = maker.leaves.0.min(need);
                if budget >= 0 {
                    let per_lot = price * qpt;
                    if budget < qty * per_lot && budget / per_lot < qty {
                        return false;
                    }
                    budget -= qty * per_lot;
                }
                need -= qty;
                if need == 0 {
                    return true;
                }
            }
        }
        false
    }

    /// Trade the taker against the opposite side up to `limit`.
    ///
    /// Returns 0 when the taker is filled or nothing is left to trade within
    /// its limit; a reason when it must stop (self-trade prevention ended it,
    /// its budget cannot pay for the next lot); -1 when a buy by quote amount
    /// has spent its budget down to less than a lot.
    #[inline(never)]
    fn match_order(&mut self, b: usize, t: u32, limit: Limit) -> i64 {
        let (qpt, bpl, base, quote, taker_bps, maker_bps) = {
            let m = &self.markets[b];
            (m.spec.quote_per_tick_lot, m.spec.base_per_lot, m.base, m.quote, m.spec.taker_fee_bps, m.spec.maker_fee_bps)
        };
        let by_quote = self.orders.cold(t).quantity.0 == 0;
        let (side, otype, stp, taker_account, taker_acct, taker_id, taker_price) = {
            let o = &self.orders[t];
            (o.side, o.order_type, o.stp, o.account, o.acct, o.id, o.price)
        };
        let opp = side.opposite();
        let symbol = self.books[b].symbol;
        let sign = self.books[b].side(opp).sign;
        let limit_key = limit.map_or(i64::MIN, |l| l * sign);
        let budgeted = side == Side::Buy && otype.is_market();
        let taker_limit_buy = side == Side::Buy && !budgeted;
        let mut stopped = 0;
        while let Some(&(key, lv)) = self.books[b].side(opp).keys.last() {
            if key < limit_key {
                break;
            }
            let price = Price(key * sign);
            let mut touched = false;
            loop {
                let mk = self.books[b].side(opp).levels[lv as usize].head;
                let maker_account = self.orders[mk].account;
                if maker_account == taker_account && stp != Stp::None {
                    if stp == Stp::CancelNewest {
                        // Stops at an untouched level: no book delta for it.
                        stopped = r::SELF_TRADE;
                        break;
                    }
                    touched = true;
                    match stp {
                        Stp::Decrement => {
                            let cut = self.orders[mk].leaves.0.min(self.orders[t].leaves.0);
                            self.decrement(b, mk, Some(lv), cut);
                            self.decrement(b, t, None, cut);
                            if self.orders[t].leaves.0 == 0 || self.books[b].side(opp).levels[lv as usize].total == 0 {
                                break;
                            }
                            continue;
                        }
                        _ => {
                            // Cancel oldest or cancel both: the maker goes.
                            let cut = self.orders[mk].leaves.0;
                            self.decrement(b, mk, Some(lv), cut);
                            if stp == Stp::CancelBoth {
                                stopped = r::SELF_TRADE;
                                break;
                            }
                            if self.books[b].side(opp).levels[lv as usize].total == 0 {
                                break;
                            }
                            continue;
                        }
                    }
                }
                let taker_leaves = self.orders[t].leaves.0;
                let mut qty = self.orders[mk].leaves.0;
                if !by_quote && taker_leaves < qty {
                    qty = taker_leaves;
                }
                let per_lot = price.0 * qpt;
                // (qty * per_lot <= 2**62: no overflow; the division only when the budget may be short.)
                if budgeted && self.orders[t].hold < qty * per_lot {
                    let affordable = self.orders[t].hold / per_lot;
                    if affordable < qty {
                        qty = affordable;
                        if qty == 0 {
                            stopped = if by_quote { -1 } else { r::INSUFFICIENT_FUNDS };
                            break;
                        }
                    }
                }
                // Settle: the buyer pays quote from its hold and receives base;
                // each side's fee comes out of what it receives.
                let notional = Quantity(qty).notional(price, qpt);
                let base_amount = Quantity(qty).base_units(bpl);
                let maker_acct = self.orders[mk].acct;
                let (taker_fee, maker_fee);
                if side == Side::Buy {
                    taker_fee = bps_of(base_amount, taker_bps);
                    maker_fee = bps_of(notional, maker_bps);
                    let paid = if taker_limit_buy { Quantity(qty).notional(taker_price, qpt) } else { notional };
                    self.orders[t].hold -= paid;
                    self.orders[mk].hold -= base_amount;
                    self.balances.settle(taker_acct, maker_acct, base, quote, base_amount, notional, paid, taker_fee, maker_fee);
                } else {
                    taker_fee = bps_of(notional, taker_bps);
                    maker_fee = bps_of(base_amount, maker_bps);
                    let paid = Quantity(qty).notional(self.orders[mk].price, qpt);
                    self.orders[t].hold -= base_amount;
                    self.orders[mk].hold -= paid;
                    self.balances.settle(maker_acct, taker_acct, base, quote, base_amount, notional, paid, maker_fee, taker_fee);
                }
                if !by_quote {
                    self.orders[t].leaves.0 -= qty;
                }
                let maker_leaves = {
                    let mo = &mut self.orders[mk];
                    mo.leaves.0 -= qty;
                    mo.leaves.0
                };
                let maker_id = self.orders[mk].id;
                let book = &mut self.books[b];
                let level_total = {
                    let level = &mut book.side_mut(opp).levels[lv as usize];
                    level.total -= qty;
                    level.total
                };
                book.set_last_price(price);
                touched = true;
                let taker_leaves = self.orders[t].leaves.0;
                self.out.push(Event {
                    kind: ek::TRADE,
                    seq: 0,
                    index: 0,
                    symbol,
                    order_id: taker_id.0,
                    account: taker_account.0,
                    side: side.code(),
                    price: price.0,
                    quantity: qty,
                    leaves: taker_leaves,
                    maker_order_id: maker_id.0,
                    maker_account: maker_account.0,
                    maker_leaves,
                    taker_fee,
                    maker_fee,
                    reason: 0,
                });
                if maker_leaves == 0 {
                    let bs = book.side_mut(opp);
                    bs.detach(&mut self.orders, mk);
                    bs.levels[lv as usize].count -= 1;
                    self.ids.remove(maker_id.0);
                    self.orders.release(mk);
                }
                if level_total == 0 || (!by_quote && taker_leaves == 0) {
                    break;
                }
            }
            if touched {
                let bs = self.books[b].side_mut(opp);
                let level = bs.levels[lv as usize];
                self.out.level(symbol, opp, level.price, level.total);
                bs.drop_if_empty(lv);
            }
            if stopped != 0 || (!by_quote && self.orders[t].leaves.0 == 0) {
                return stopped;
            }
        }
        0
    }

    /// Self-trade prevention: take `cut` lots off an order without a trade.
    ///
    /// `level` is the maker's level (`None` for the taker, which is not in the
    /// book). A maker cut to nothing is gone; a taker cut to nothing is ended
    /// by the caller (its budget may remain).
    fn decrement(&mut self, b: usize, slot: u32, level: Option<u32>, cut: i64) {
        let m = self.markets[b];
        let symbol = self.books[b].symbol;
        let o = &mut self.orders[slot];
        let (freed, asset) = if o.side == Side::Sell {
            (Quantity(cut).base_units(m.spec.base_per_lot), m.base)
        } else if matches!(o.order_type, OrderType::Limit | OrderType::StopLimit) {
            (Quantity(cut).notional(o.price, m.spec.quote_per_tick_lot), m.quote)
        } else {
            (0, m.quote) // a market buy's budget stays for the rest of its quantity
        };
        o.leaves.0 -= cut;
        let (id, account, side, price, leaves, hold, acct) = (o.id, o.account, o.side, o.price, o.leaves.0, o.hold, o.acct);
        if let Some(lv) = level {
            self.books[b].side_mut(side).levels[lv as usize].total -= cut;
        }
        if leaves != 0 {
            self.orders[slot].hold -= freed;
            if freed != 0 {
                self.balances.release(acct, asset, freed);
            }
        } else if let Some(lv) = level {
            let bs = self.books[b].side_mut(side);
            bs.levels[lv as usize].count -= 1;
            bs.detach(&mut self.orders, slot);
            if hold != 0 {
                self.balances.release(acct, asset, hold);
            }
            self.ids.remove(id.0);
            self.orders.release(slot);
        }
        self.out.emit(ek::CANCELLED, symbol, id.0, account.0, side.code(), price.0, cut, leaves, r::SELF_TRADE);
    }

    // Stops ----------------------------------------------------------------

    /// Fire the stops the last trade price has reached (cheap when there are none).
    #[inline(always)]
    fn fire_stops(&mut self, b: usize) {
        let book = &self.books[b];
        if book.last_price.0 != 0 && book.has_stops() {
            self.fire_reached_stops(b);
        }
    }

    #[inline(never)]
    fn fire_reached_stops(&mut self, b: usize) {
        while let Some(id) = self.books[b].pop_triggered() {
            let Some(slot) = self.ids.get(id.0) else {
                continue; // unreachable: every waiting stop is live
            };
            let symbol = self.books[b].symbol;
            let quantity = self.orders.cold(slot).quantity;
            let o = &mut self.orders[slot];
            o.triggered = true;
            let (account, side, price, leaves) = (o.account, o.side, o.price, o.leaves);
            self.out.emit(ek::TRIGGERED, symbol, id.0, account.0, side.code(), price.0, quantity.0, leaves.0, 0);
            self.activate(b, slot);
        }
    }

    /// A triggered stop enters the market, checked against the market of now.
    fn activate(&mut self, b: usize, slot: u32) {
        let m = self.markets[b];
        let o = &self.orders[slot];
        if o.order_type == OrderType::StopLimit {
            let book = &self.books[b];
            if !book.in_band(o.price) {
                self.end(b, slot, r::PRICE_OUT_OF_BAND);
                return;
            }
            if o.post_only && book.would_cross(o.side, o.price) {
                self.end(b, slot, r::POST_ONLY_WOULD_TRADE);
                return;
            }
        } else if o.side == Side::Buy && self.orders.cold(slot).quantity.0 != 0 && o.hold == 0 {
            let budget = self.balances.available_at(o.acct, m.quote);
            if budget <= 0 {
                self.end(b, slot, r::INSUFFICIENT_FUNDS);
                return;
            }
            self.balances.hold(o.acct, m.quote, budget);
            self.orders[slot].hold = budget;
        }
        self.execute(b, slot);
    }

    // Cancel, amend, expire -------------------------------------------------

    /// Take a resting order or a waiting stop out of the shard, returning its hold.
    fn remove_live(&mut self, slot: u32, kind: i64, why: i64) {
        let o = &self.orders[slot];
        let b = o.book as usize;
        let symbol = self.books[b].symbol;
        let (id, account, side, price, leaves) = (o.id, o.account, o.side, o.price, o.leaves);
        if o.is_waiting_stop() {
            let stop = self.orders.cold(slot).stop_price;
            self.books[b].remove_stop(side, stop, id);
            self.out.emit(kind, symbol, id.0, account.0, side.code(), price.0, leaves.0, 0, why);
            self.end(b, slot, -1);
            return;
        }
        let bs = self.books[b].side_mut(side);
        let lv = bs.unlink(&mut self.orders, slot);
        let level = bs.levels[lv as usize];
        self.out.emit(kind, symbol, id.0, account.0, side.code(), price.0, leaves.0, 0, why);
        self.out.level(symbol, side, level.price, level.total);
        self.books[b].side_mut(side).drop_if_empty(lv);
        self.end(b, slot, -1);
    }

    /// The live order `c.order_id` if `c.account` owns it.
    #[inline]
    fn owned(&self, c: &Command) -> Option<u32> {
        let slot = self.ids.get(c.order_id)?;
        (self.orders[slot].account.0 == c.account).then_some(slot)
    }

    fn cancel(&mut self, c: &Command) {
        match self.owned(c) {
            Some(slot) => self.remove_live(slot, ek::CANCELLED, r::USER),
            None => self.out.reject(c, c.order_id, r::UNKNOWN_ORDER),
        }
    }

    fn mass_cancel(&mut self, c: &Command) {
        let (account, symbol) = (c.account, c.symbol);
        if symbol != 0 && self.book_index(symbol).is_none() {
            self.out.reject(c, 0, r::UNKNOWN_SYMBOL);
            return;
        }
        if account <= 0 {
            self.out.reject(c, 0, r::INVALID_ACCOUNT);
            return;
        }
        let mut doomed: Vec<(OrderId, u32)> = self
            .orders
            .live_slots()
            .filter(|&s| {
                let o = &self.orders[s];
                o.account.0 == account && (symbol == 0 || self.books[o.book as usize].symbol == symbol)
            })
            .map(|s| (self.orders[s].id, s))
            .collect();
        doomed.sort_unstable();
        for (_, slot) in doomed {
            self.remove_live(slot, ek::CANCELLED, r::MASS_CANCEL);
        }
    }

    /// Change a resting order's price and/or open quantity.
    ///
    /// A quantity decrease at the same price keeps time priority; a price
    /// change or an increase sends the order to the back, and a new price is
    /// matched like a new order (a post-only order is refused instead).
    fn amend(&mut self, c: &Command) {
        let Some(slot) = self.owned(c) else {
            self.out.reject(c, c.order_id, r::UNKNOWN_ORDER);
            return;
        };
        let o = &self.orders[slot];
        let b = o.book as usize;
        // Rejections of a known order name its instrument (an amend carries none).
        let symbol = self.books[b].symbol;
        if o.is_waiting_stop() {
            self.out.reject_for(c, symbol, r::NOT_AMENDABLE);
            return;
        }
        let m = self.markets[b];
        let new_price = if c.price != 0 { Price(c.price) } else { o.price };
        let new_leaves = if c.quantity != 0 { Quantity(c.quantity) } else { o.leaves };
        if c.price < 0 || new_price.0 > m.spec.max_price {
            self.out.reject_for(c, symbol, r::INVALID_PRICE);
            return;
        }
        if c.quantity < 0
            || new_leaves.0 > m.spec.max_quantity
            || (c.quantity != 0 && new_leaves.0 < m.spec.min_quantity)
        {
            self.out.reject_for(c, symbol, r::INVALID_QUANTITY);
            return;
        }
        let moved = new_price != o.price;
        let book = &self.books[b];
        if moved && !book.in_band(new_price) {
            self.out.reject_for(c, symbol, r::PRICE_OUT_OF_BAND);
            return;
        }
        if moved && o.post_only && book.would_cross(o.side, new_price) {
            self.out.reject_for(c, symbol, r::POST_ONLY_WOULD_TRADE);
            return;
        }
        let (asset, new_hold) = match o.side {
            Side::Buy => (m.quote, new_leaves.notional(new_price, m.spec.quote_per_tick_lot)),
            Side::Sell => (m.base, new_leaves.base_units(m.spec.base_per_lot)),
        };
        let extra = new_hold - o.hold;
        if extra > 0 && extra > self.balances.available_at(o.acct, asset) {
            self.out.reject_for(c, symbol, r::INSUFFICIENT_FUNDS);
            return;
        }
        let (acct, side, id, account, old_leaves) = (o.acct, o.side, o.id, o.account, o.leaves);
        if extra > 0 {
            self.balances.hold(acct, asset, extra);
        } else if extra < 0 {
            self.balances.release(acct, asset, -extra);
        }
        self.out.emit(ek::AMENDED, symbol, id.0, account.0, side.code(), new_price.0, new_leaves.0, new_leaves.0, 0);
        if !moved && new_leaves <= old_leaves {
            let o = &mut self.orders[slot];
            o.leaves = new_leaves;
            o.hold = new_hold;
            let lv = o.level;
            let level = &mut self.books[b].side_mut(side).levels[lv as usize];
            level.total -= old_leaves.0 - new_leaves.0;
            let (price, total) = (level.price, level.total);
            self.out.level(symbol, side, price, total);
            return;
        }
        if !moved {
            // An increase loses time priority: to the back of the same level.
            let bs = self.books[b].side_mut(side);
            bs.unlink(&mut self.orders, slot);
            let o = &mut self.orders[slot];
            o.leaves = new_leaves;
            o.hold = new_hold;
            let lv = bs.push_back(&mut self.orders, slot);
            let level = bs.levels[lv as usize];
            self.out.level(symbol, side, level.price, level.total);
            return;
        }
        let bs = self.books[b].side_mut(side);
        let lv = bs.unlink(&mut self.orders, slot);
        let level = bs.levels[lv as usize];
        self.out.level(symbol, side, level.price, level.total);
        bs.drop_if_empty(lv);
        let o = &mut self.orders[slot];
        o.price = new_price;
        o.leaves = new_leaves;
        o.hold = new_hold;
        self.execute(b, slot);
        self.fire_stops(b);
    }

    fn expire(&mut self) {
        let now = self.time;
        while let Some(&Reverse((at, id))) = self.expiries.peek() {
            if at > now {
                break;
            }
            self.expiries.pop();
            if let Some(slot) = self.ids.get(id) {
                if self.orders.cold(slot).expire_time == at {
                    self.remove_live(slot, ek::EXPIRED, 0);
                }
            }
        }
    }

    // Funds ------------------------------------------------------------------

    fn deposit(&mut self, c: &Command) {
        let (account, amount) = (c.account, c.quantity);
        if account <= 0 {
            self.out.reject(c, 0, r::INVALID_ACCOUNT);
            return;
        }
        let Some(asset) = self.balances.asset_index(c.symbol) else {
            self.out.reject(c, 0, r::UNKNOWN_ASSET);
            return;
        };
        if amount <= 0 || !self.balances.can_deposit(asset, amount) {
            self.out.reject(c, 0, r::INVALID_AMOUNT);
            return;
        }
        self.balances.deposit(AccountId(account), asset, amount);
        self.out.emit(ek::DEPOSITED, c.symbol, 0, account, 0, 0, amount, 0, 0);
    }

    fn withdraw(&mut self, c: &Command) {
        let (account, amount) = (c.account, c.quantity);
        if account < 0 {
            self.out.reject(c, 0, r::INVALID_ACCOUNT);
            return;
        }
        let Some(asset) = self.balances.asset_index(c.symbol) else {
            self.out.reject(c, 0, r::UNKNOWN_ASSET);
            return;
        };
        if amount <= 0 {
            self.out.reject(c, 0, r::INVALID_AMOUNT);
            return;
        }
        let slot = self.balances.slot(AccountId(account));
        let available = slot.map_or(0, |s| self.balances.available_at(s, asset));
        match slot {
            Some(slot) if amount <= available => {
                self.balances.withdraw(slot, asset, amount);
                self.out.emit(ek::WITHDRAWN, c.symbol, 0, account, 0, 0, amount, 0, 0);
            }
            _ => self.out.reject(c, 0, r::INSUFFICIENT_FUNDS),
        }
    }
}
