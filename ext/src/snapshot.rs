//! The canonical shard state (`core/snapshot.py`): one byte layout every
//! backend writes and reads, so a snapshot restores into any backend and
//! `state_hash` (BLAKE2b-128 of it) is equal across backends exactly when
//! their states are.
//!
//! Layout
//! ------
//! Little-endian `i64` words:
//!
//! ```text
//! MAGIC, VERSION, seq, time, asset_slots,
//! account count, per account (ascending id, only accounts holding something):
//!     id, available[asset_slots], held[asset_slots],
//! book count, per book (ascending symbol):
//!     symbol, last_price,
//!     bid level count, per level best first: order count, orders (FIFO)...
//!     ask level count, likewise,
//!     buy stop count, orders in trigger order; sell stop count, orders,
//! ```
//!
//! where an order is the sixteen [`ORDER_FIELDS`] words.
//!
//! Restoring
//! ---------
//! [`decode`] checks the structure exactly as `core.snapshot.decode` does.
//! [`Engine::restore`] then checks what the reference checks (same instruments,
//! same asset slots) and, because Rust integers are bounded where Python's are
//! not, also that every value is one a running shard can produce (see
//! [`Engine::restore`]); a snapshot failing any check is refused whole and the
//! engine is left as it was.

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;
use rustc_hash::FxHashSet;
use thiserror::Error;

use crate::book::{Book, Order, OrderCold, NIL};
use crate::engine::Engine;
use crate::types::{
    AccountId, OrderId, OrderType, Price, Quantity, Side, Stp, TimeInForce, FEE_ACCOUNT, MAX_AMOUNT,
};
use std::cmp::Reverse;

/// `b"RIASNAP1"` read as a little-endian integer.
pub const MAGIC: i64 = 0x3150_414E_5341_4952;
pub const VERSION: i64 = 1;
/// The order fields a snapshot records, in order (`core.snapshot.ORDER_FIELDS`).
pub const ORDER_FIELDS: [&str; 16] = [
    "order_id",
    "account",
    "symbol",
    "side",
    "order_type",
    "time_in_force",
    "price",
    "quantity",
    "leaves",
    "quote_quantity",
    "stop_price",
    "expire_time",
    "post_only",
    "stp",
    "hold",
    "triggered",
];
pub const ORDER_WIDTH: usize = ORDER_FIELDS.len();

/// Bytes that are not a snapshot this engine can restore.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("snapshot length is not a whole number of 64-bit words")]
    Length,
    #[error("not a Rialto snapshot of this version")]
    Magic,
    #[error("snapshot is truncated")]
    Truncated,
    #[error("snapshot has trailing data")]
    Trailing,
    #[error("snapshot has a negative count")]
    NegativeCount,
    #[error("snapshot instruments differ from the registered instruments")]
    Instruments,
    #[error("snapshot assets differ from the registered instruments' assets")]
    Assets,
    #[error("snapshot is inconsistent: {0}")]
    Invalid(String),
}

/// One account's balances, indexed by asset id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    pub account_id: i64,
    pub available: Vec<i64>,
    pub held: Vec<i64>,
}

/// One book: levels best first, each a FIFO of orders; stops in trigger order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookState {
    pub symbol: i64,
    pub last_price: i64,
    pub bids: Vec<Vec<[i64; ORDER_WIDTH]>>,
    pub asks: Vec<Vec<[i64; ORDER_WIDTH]>>,
    pub buy_stops: Vec<[i64; ORDER_WIDTH]>,
    pub sell_stops: Vec<[i64; ORDER_WIDTH]>,
}

/// A decoded snapshot (`core.snapshot.ShardState`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardState {
    pub seq: i64,
    pub time: i64,
    pub asset_slots: i64,
    pub accounts: Vec<AccountState>,
    pub books: Vec<BookState>,
}

/// Serialise a state to its canonical bytes.
pub fn encode(state: &ShardState) -> Vec<u8> {
    let mut w: Vec<i64> = vec![MAGIC, VERSION, state.seq, state.time, state.asset_slots, state.accounts.len() as i64];
    for acc in &state.accounts {
        w.push(acc.account_id);
        w.extend_from_slice(&acc.available);
        w.extend_from_slice(&acc.held);
    }
    w.push(state.books.len() as i64);
    for book in &state.books {
        w.push(book.symbol);
        w.push(book.last_price);
        for levels in [&book.bids, &book.asks] {
            w.push(levels.len() as i64);
            for orders in levels {
                w.push(orders.len() as i64);
                for order in orders {
                    w.extend_from_slice(order);
                }
            }
        }
        for stops in [&book.buy_stops, &book.sell_stops] {
            w.push(stops.len() as i64);
            for order in stops {
                w.extend_from_slice(order);
            }
        }
    }
    words_to_bytes(&w)
}

fn words_to_bytes(words: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.len() * 8);
    for word in words {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out
}

/// Parse bytes into a state, with the structural checks of `core.snapshot.decode`.
pub fn decode(data: &[u8]) -> Result<ShardState, SnapshotError> {
    if data.len() % 8 != 0 || data.len() < 48 {
        return Err(SnapshotError::Length);
    }
    let words: Vec<i64> = data
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    if words[0] != MAGIC || words[1] != VERSION {
        return Err(SnapshotError::Magic);
    }
    let mut r = Reader { words: &words, at: 2 };
    let seq = r.one()?;
    let time = r.one()?;
    let slots = r.count()?;
    let n_accounts = r.count()?;
    let mut state = ShardState { seq, time, asset_slots: slots as i64, accounts: Vec::new(), books: Vec::new() };
    for _ in 0..n_accounts {
        let account_id = r.one()?;
        let available = r.take(slots)?.to_vec();
        let held = r.take(slots)?.to_vec();
        state.accounts.push(AccountState { account_id, available, held });
    }
    let n_books = r.count()?;
    for _ in 0..n_books {
        let symbol = r.one()?;
        let last_price = r.one()?;
        let mut book = BookState { symbol, last_price, ..BookState::default() };
        for levels in [&mut book.bids, &mut book.asks] {
            let n_levels = r.count()?;
            for _ in 0..n_levels {
                let n_orders = r.count()?;
                let mut orders = Vec::new();
                for _ in 0..n_orders {
                    orders.push(r.order()?);
                }
                levels.push(orders);
            }
        }
        for stops in [&mut book.buy_stops, &mut book.sell_stops] {
            let n_stops = r.count()?;
            for _ in 0..n_stops {
                stops.push(r.order()?);
            }
        }
        state.books.push(book);
    }
    if r.at != words.len() {
        return Err(SnapshotError::Trailing);
    }
    Ok(state)
}

struct Reader<'a> {
    words: &'a [i64],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [i64], SnapshotError> {
        if n > self.words.len() - self.at {
            return Err(SnapshotError::Truncated);
        }
        let chunk = &self.words[self.at..self.at + n];
        self.at += n;
        Ok(chunk)
    }

    fn one(&mut self) -> Result<i64, SnapshotError> {
        Ok(self.take(1)?[0])
    }

    /// A count: non-negative, and never more than the words left (so a
    /// corrupt count cannot make the decoder reserve or loop absurdly).
    fn count(&mut self) -> Result<usize, SnapshotError> {
        let n = self.one()?;
        if n < 0 {
            return Err(SnapshotError::NegativeCount);
        }
        if n as u64 > (self.words.len() - self.at) as u64 {
            return Err(SnapshotError::Truncated);
        }
        Ok(n as usize)
    }

    fn order(&mut self) -> Result<[i64; ORDER_WIDTH], SnapshotError> {
        let mut out = [0; ORDER_WIDTH];
        out.copy_from_slice(self.take(ORDER_WIDTH)?);
        Ok(out)
    }
}

/// BLAKE2b with a 16-byte digest, hex: `hashlib.blake2b(data, digest_size=16).hexdigest()`.
pub fn blake2b_128_hex(data: &[u8]) -> String {
    let mut out = [0u8; 16];
    // 16 is a valid BLAKE2b output size and the buffer has exactly that size,
    // so neither call can fail; no error path (and no panic) is needed.
    if let Ok(mut hasher) = Blake2bVar::new(out.len()) {
        hasher.update(data);
        let _ = hasher.finalize_variable(&mut out);
    }
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn order_fields(o: &Order, c: &OrderCold, symbol: i64) -> [i64; ORDER_WIDTH] {
    [
        o.id.0,
        o.account.0,
        symbol,
        o.side.code(),
        o.order_type.code(),
        o.time_in_force.code(),
        o.price.0,
        c.quantity.0,
        o.leaves.0,
        c.quote_quantity,
        c.stop_price.0,
        c.expire_time,
        o.post_only as i64,
        o.stp.code(),
        o.hold,
        o.triggered as i64,
    ]
}

fn invalid(what: impl Into<String>) -> SnapshotError {
    SnapshotError::Invalid(what.into())
}

impl Engine {
    /// The shard's state in canonical form.
    pub fn state(&self) -> ShardState {
        let accounts = self
            .balances
            .nonempty_accounts()
            .into_iter()
            .map(|(id, available, held)| AccountState { account_id: id.0, available, held })
            .collect();
        let mut books = Vec::with_capacity(self.books.len());
        for b in self.books_by_symbol() {
            let book = &self.books[b];
            let side_state = |side: &crate::book::BookSide| -> Vec<Vec<[i64; ORDER_WIDTH]>> {
                side.keys
                    .iter()
                    .rev()
                    .map(|&(_, lv)| {
                        side.level_orders(&self.orders, lv)
                            .map(|s| order_fields(&self.orders[s], self.orders.cold(s), book.symbol))
                            .collect()
                    })
                    .collect()
            };
            let stops = |list: &[(i64, OrderId)]| -> Vec<[i64; ORDER_WIDTH]> {
                list.iter()
                    .filter_map(|(_, id)| self.ids.get(id.0))
                    .map(|s| order_fields(&self.orders[s], self.orders.cold(s), book.symbol))
                    .collect()
            };
            books.push(BookState {
                symbol: book.symbol,
                last_price: book.last_price.0,
                bids: side_state(book.bids()),
                asks: side_state(book.asks()),
                buy_stops: stops(&book.buy_stops),
                sell_stops: stops(&book.sell_stops),
            });
        }
        ShardState { seq: self.seq, time: self.time, asset_slots: self.balances.asset_slots, accounts, books }
    }

    /// `core.snapshot.encode` of the shard's state.
    pub fn snapshot(&self) -> Vec<u8> {
        encode(&self.state())
    }

    /// BLAKE2b-128 of the snapshot, hex.
    pub fn state_hash(&self) -> String {
        blake2b_128_hex(&self.snapshot())
    }

    /// Replace this shard's state with a snapshot from any backend.
    ///
    /// The same instruments must already be registered. Beyond the
    /// reference's checks, the snapshot must be one a running shard can
    /// produce: `seq >= 0`; accounts unique, every amount in `[0, 2**62]`,
    /// non-zero only for registered assets, each asset's supply at most
    /// `2**62`; `0 <= last_price <= max_price`; order ids unique, in
    /// `1..=seq`; every order of the book's symbol and an account `>= 1`, its
    /// enumerations in range, prices and quantities within the instrument's
    /// limits, a resting order on the side it is listed under with
    /// `leaves >= 1` (and, if a stop, triggered), a waiting stop untriggered
    /// with a stop price. On any failure the engine is unchanged.
    pub fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        let state = decode(data)?;
        let symbols: Vec<i64> = self.books_by_symbol().iter().map(|&b| self.books[b].symbol).collect();
        if symbols != state.books.iter().map(|b| b.symbol).collect::<Vec<_>>() {
            return Err(SnapshotError::Instruments);
        }
        if state.asset_slots != self.balances.asset_slots {
            return Err(SnapshotError::Assets);
        }
        self.check_state(&state)?;

        // Checked: build the new state.
        self.balances.clear_accounts();
        for acc in &state.accounts {
            self.balances.set_account(AccountId(acc.account_id), &acc.available, &acc.held);
        }
        self.orders.clear();
        self.ids.clear();
        self.expiries.clear();
        for bs in &state.books {
            let Some(b) = self.book_index(bs.symbol) else {
                continue; // checked above
            };
            let spec = &self.markets[b].spec;
            let mut book = Book::new(bs.symbol, spec.price_band_bps, spec.reference_price);
            book.set_last_price(Price(bs.last_price));
            for (side, levels) in [(Side::Buy, &bs.bids), (Side::Sell, &bs.asks)] {
                for fields in levels.iter().flatten() {
                    let slot = self.adopt(fields, b);
                    book.side_mut(side).push_back(&mut self.orders, slot);
                }
            }
            for fields in bs.buy_stops.iter().chain(bs.sell_stops.iter()) {
                let slot = self.adopt(fields, b);
                let o = &self.orders[slot];
                book.add_stop(o.side, self.orders.cold(slot).stop_price, o.id);
            }
            self.books[b] = book;
        }
        self.seq = state.seq;
        self.time = state.time;
        Ok(())
    }

    /// Store one checked order from a snapshot (`ReferenceEngine._adopt`).
    fn adopt(&mut self, f: &[i64; ORDER_WIDTH], b: usize) -> u32 {
        let account = AccountId(f[1]);
        let acct = self.balances.slot_or_create(account);
        let tif = TimeInForce::from_code(f[5]).unwrap_or(TimeInForce::Gtc);
        let order = Order {
            prev: NIL,
            next: NIL,
            level: NIL,
            acct,
            leaves: Quantity(f[8]),
            hold: f[14],
            price: Price(f[6]),
            id: OrderId(f[0]),
            account,
            book: b as u16,
            side: Side::from_code(f[3]).unwrap_or(Side::Buy),
            order_type: OrderType::from_code(f[4]).unwrap_or(OrderType::Limit),
            time_in_force: tif,
            stp: Stp::from_code(f[13]).unwrap_or(Stp::None),
            post_only: f[12] != 0,
            triggered: f[15] != 0,
        };
        let cold = OrderCold::new(Quantity(f[7]), f[9], Price(f[10]), f[11]);
        let slot = self.orders.alloc(order, cold);
        self.ids.insert_new(f[0], slot);
        if tif == TimeInForce::Gtd {
            self.expiries.push(Reverse((f[11], f[0])));
        }
        slot
    }

    /// The value checks of [`Engine::restore`].
    fn check_state(&self, state: &ShardState) -> Result<(), SnapshotError> {
        if state.seq < 0 {
            return Err(invalid("negative sequence"));
        }
        let mut registered = vec![false; state.asset_slots as usize];
        for (_, asset) in self.balances.assets() {
            registered[asset as usize] = true;
        }
        let mut supply = vec![0i128; state.asset_slots as usize];
        let mut seen_accounts = FxHashSet::default();
        for acc in &state.accounts {
            if acc.account_id < FEE_ACCOUNT.0 {
                return Err(invalid(format!("negative account id {}", acc.account_id)));
            }
            if !seen_accounts.insert(acc.account_id) {
                return Err(invalid(format!("account {} appears twice", acc.account_id)));
            }
            for (asset, (&a, &h)) in acc.available.iter().zip(acc.held.iter()).enumerate() {
                if !(0..=MAX_AMOUNT).contains(&a) || !(0..=MAX_AMOUNT).contains(&h) {
                    return Err(invalid(format!("account {} has an amount out of range", acc.account_id)));
                }
                if (a != 0 || h != 0) && !registered[asset] {
                    return Err(invalid(format!("account {} holds unregistered asset {asset}", acc.account_id)));
                }
                supply[asset] += a as i128 + h as i128;
            }
        }
        if supply.iter().any(|&s| s > MAX_AMOUNT as i128) {
            return Err(invalid("an asset's supply exceeds 2**62"));
        }
        let mut seen_orders = FxHashSet::default();
        for bs in &state.books {
            let Some(b) = self.book_index(bs.symbol) else {
                return Err(SnapshotError::Instruments);
            };
            let spec = &self.markets[b].spec;
            if !(0..=spec.max_price).contains(&bs.last_price) {
                return Err(invalid(format!("book {}: last price out of range", bs.symbol)));
            }
            let check = |f: &[i64; ORDER_WIDTH], listed: Option<i64>| -> Result<(), SnapshotError> {
                let bad = |what: &str| Err(invalid(format!("order {} in book {}: {what}", f[0], bs.symbol)));
                if f[0] < 1 || f[0] > state.seq {
                    return bad("id out of range");
                }
                if f[1] < 1 {
                    return bad("account must be positive");
                }
                if f[2] != bs.symbol {
                    return bad("symbol differs from its book");
                }
                let (Some(_side), Some(otype), Some(_tif), Some(_stp)) = (
                    Side::from_code(f[3]),
                    OrderType::from_code(f[4]),
                    TimeInForce::from_code(f[5]),
                    Stp::from_code(f[13]),
                ) else {
                    return bad("side, type, time in force or STP out of range");
                };
                if !(0..=1).contains(&f[12]) || !(0..=1).contains(&f[15]) {
                    return bad("post_only or triggered out of range");
                }
                if !(0..=spec.max_price).contains(&f[6]) || !(0..=spec.max_price).contains(&f[10]) {
                    return bad("price out of range");
                }
                if !(0..=spec.max_quantity).contains(&f[7]) || !(0..=spec.max_quantity).contains(&f[8]) {
                    return bad("quantity out of range");
                }
                if !(0..=MAX_AMOUNT).contains(&f[9]) || !(0..=MAX_AMOUNT).contains(&f[14]) {
                    return bad("amount out of range");
                }
                match listed {
                    Some(side) => {
                        // Resting in a level.
                        if f[3] != side {
                            return bad("listed under the other side");
                        }
                        if f[6] < 1 || f[8] < 1 {
                            return bad("a resting order needs a price and open quantity");
                        }
                        if (f[10] != 0 || otype.is_stop()) && f[15] == 0 {
                            return bad("an untriggered stop cannot rest in a level");
                        }
                    }
                    None => {
                        if !otype.is_stop() || f[15] != 0 || f[10] < 1 {
                            return bad("a waiting stop needs a stop type, a stop price and no trigger");
                        }
                    }
                }
                Ok(())
            };
            for (side, levels) in [(0, &bs.bids), (1, &bs.asks)] {
                let mut open: i128 = 0;
                for f in levels.iter().flatten() {
                    check(f, Some(side))?;
                    if !seen_orders.insert(f[0]) {
                        return Err(invalid(format!("order {} appears twice", f[0])));
                    }
                    open += f[8] as i128;
                }
                // Every resting order's open quantity is backed by funds, so a
                // side's total is bounded like an amount (and level totals fit).
                if open > MAX_AMOUNT as i128 {
                    return Err(invalid(format!("book {}: open quantity exceeds 2**62", bs.symbol)));
                }
            }
            for (side, stops) in [(0, &bs.buy_stops), (1, &bs.sell_stops)] {
                for f in stops {
                    check(f, None)?;
                    if f[3] != side {
                        return Err(invalid(format!("stop {} listed under the other side", f[0])));
                    }
                    if !seen_orders.insert(f[0]) {
                        return Err(invalid(format!("order {} appears twice", f[0])));
                    }
                }
            }
        }
        Ok(())
    }
}
