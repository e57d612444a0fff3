//! Domain value types: the fixed-width command and event records, the enums
//! their integer fields encode, newtypes for the quantities the engine must
//! never mix up, and an instrument's limits.
//!
//! Newtypes
//! --------
//! [`Price`] (ticks), [`Quantity`] (lots), [`OrderId`] and [`AccountId`] wrap an
//! `i64` each, so passing a quantity where a price is expected, or an order id
//! where an account id is expected, is a compile error. Amounts of an asset
//! (balances, holds, notionals, fees) stay plain `i64` in that asset's smallest
//! unit.
//!
//! Bounds
//! ------
//! The reference engine uses Python's unbounded integers. The instrument
//! limits ([`InstrumentSpec::validate`], the same rules as
//! `core.instrument.Instrument`) and [`MAX_AMOUNT`] keep every price x quantity
//! x units product, every balance and every asset's supply within
//! `[0, 2**62]`, so `i64` holds them; `amount x bps` (fees, the price band's
//! width) is formed by [`bps_of`] without a product that could leave 64 bits.

use thiserror::Error;

/// Upper bound of any balance and of an asset's supply in a shard (`core.numbers.MAX_AMOUNT`).
pub const MAX_AMOUNT: i64 = 1 << 62;
/// The account that collects fees (`core.instrument.FEE_ACCOUNT`).
pub const FEE_ACCOUNT: AccountId = AccountId(0);
/// Largest fee in basis points (`core.instrument.MAX_FEE_BPS`).
pub const MAX_FEE_BPS: i64 = 1_000;
/// Largest price band in basis points (`core.instrument.MAX_BAND_BPS`).
pub const MAX_BAND_BPS: i64 = 10_000;

macro_rules! newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl $name {
            /// The raw integer, as commands, events and snapshots carry it.
            #[inline(always)]
            pub const fn get(self) -> i64 {
                self.0
            }
        }
    };
}

newtype!(
    /// A limit, stop or trade price in whole ticks.
    Price
);
newtype!(
    /// An order size in whole lots.
    Quantity
);
newtype!(
    /// An order's id: the sequence number of the command that placed it.
    OrderId
);
newtype!(
    /// An account id (0 is the fee account).
    AccountId
);

impl Quantity {
    /// Quote units paid for this many lots at `price` (`Instrument.notional`).
    #[inline(always)]
    pub fn notional(self, price: Price, quote_per_tick_lot: i64) -> i64 {
        self.0 * price.0 * quote_per_tick_lot
    }

    /// Base units in this many lots.
    #[inline(always)]
    pub fn base_units(self, base_per_lot: i64) -> i64 {
        self.0 * base_per_lot
    }
}

/// `floor(amount * bps / 10_000)` for `0 <= amount <= 2**62` and
/// `0 <= bps <= 10_000` (fees, the price band's width), as Python's `//`
/// computes it, without a 128-bit product.
#[inline(always)]
pub fn bps_of(amount: i64, bps: i64) -> i64 {
    debug_assert!((0..=MAX_AMOUNT).contains(&amount) && (0..=MAX_BAND_BPS).contains(&bps));
    let (amount, bps) = (amount as u64, bps as u64);
    if amount <= u64::MAX / 10_000 {
        // The product fits: one multiply and one division by a constant.
        (amount * bps / 10_000) as i64
    } else {
        // amount = 10_000 q + r, so the floor is q * bps + floor(r * bps / 10_000).
        let (q, r) = (amount / 10_000, amount % 10_000);
        (q * bps + r * bps / 10_000) as i64
    }
}

/// Integer codes of `core.commands.CommandKind`.
pub mod command_kind {
    pub const NEW_ORDER: i64 = 1;
    pub const CANCEL: i64 = 2;
    pub const AMEND: i64 = 3;
    pub const MASS_CANCEL: i64 = 4;
    pub const TICK: i64 = 5;
    pub const DEPOSIT: i64 = 6;
    pub const WITHDRAW: i64 = 7;
}

/// `core.commands.Side`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Side {
    Buy = 0,
    Sell = 1,
}

impl Side {
    pub fn from_code(code: i64) -> Option<Side> {
        match code {
            0 => Some(Side::Buy),
            1 => Some(Side::Sell),
            _ => None,
        }
    }

    #[inline(always)]
    pub fn code(self) -> i64 {
        self as i64
    }

    #[inline(always)]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// `core.commands.OrderType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OrderType {
    Limit = 0,
    Market = 1,
    StopLimit = 2,
    StopMarket = 3,
}

impl OrderType {
    pub fn from_code(code: i64) -> Option<OrderType> {
        match code {
            0 => Some(OrderType::Limit),
            1 => Some(OrderType::Market),
            2 => Some(OrderType::StopLimit),
            3 => Some(OrderType::StopMarket),
            _ => None,
        }
    }

    #[inline(always)]
    pub fn code(self) -> i64 {
        self as i64
    }

    /// Market and stop-market orders carry no limit price.
    #[inline(always)]
    pub fn is_market(self) -> bool {
        matches!(self, OrderType::Market | OrderType::StopMarket)
    }

    /// Stop orders wait for a trigger before they enter the market.
    #[inline(always)]
    pub fn is_stop(self) -> bool {
        matches!(self, OrderType::StopLimit | OrderType::StopMarket)
    }
}

/// `core.commands.TimeInForce`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TimeInForce {
    Gtc = 0,
    Ioc = 1,
    Fok = 2,
    Gtd = 3,
}

impl TimeInForce {
    pub fn from_code(code: i64) -> Option<TimeInForce> {
        match code {
            0 => Some(TimeInForce::Gtc),
            1 => Some(TimeInForce::Ioc),
            2 => Some(TimeInForce::Fok),
            3 => Some(TimeInForce::Gtd),
            _ => None,
        }
    }

    #[inline(always)]
    pub fn code(self) -> i64 {
        self as i64
    }
}

/// `core.commands.SelfTradePrevention`: the incoming (taker) order's mode decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Stp {
    None = 0,
    CancelNewest = 1,
    CancelOldest = 2,
    CancelBoth = 3,
    Decrement = 4,
}

impl Stp {
    pub fn from_code(code: i64) -> Option<Stp> {
        match code {
            0 => Some(Stp::None),
            1 => Some(Stp::CancelNewest),
            2 => Some(Stp::CancelOldest),
            3 => Some(Stp::CancelBoth),
            4 => Some(Stp::Decrement),
            _ => None,
        }
    }

    #[inline(always)]
    pub fn code(self) -> i64 {
        self as i64
    }
}

/// Integer codes of `core.events.EventKind`.
pub mod event_kind {
    pub const ACCEPTED: i64 = 1;
    pub const REJECTED: i64 = 2;
    pub const TRADE: i64 = 3;
    pub const CANCELLED: i64 = 4;
    pub const EXPIRED: i64 = 5;
    pub const AMENDED: i64 = 6;
    pub const TRIGGERED: i64 = 7;
    pub const BOOK: i64 = 8;
    pub const DEPOSITED: i64 = 9;
    pub const WITHDRAWN: i64 = 10;
}

/// Integer codes of `core.events.Reason` (rejections and cancellations share it).
pub mod reason {
    pub const NONE: i64 = 0;
    pub const UNKNOWN_SYMBOL: i64 = 1;
    pub const UNKNOWN_ORDER: i64 = 2;
    pub const INVALID_ACCOUNT: i64 = 3;
    pub const INVALID_SIDE: i64 = 4;
    pub const INVALID_ORDER_TYPE: i64 = 5;
    pub const INVALID_TIME_IN_FORCE: i64 = 6;
    pub const INVALID_STP: i64 = 7;
    pub const INVALID_POST_ONLY: i64 = 8;
    pub const INVALID_QUANTITY: i64 = 9;
    pub const INVALID_PRICE: i64 = 10;
    pub const INVALID_STOP_PRICE: i64 = 11;
    pub const INVALID_EXPIRE_TIME: i64 = 12;
    pub const PRICE_OUT_OF_BAND: i64 = 13;
    pub const INSUFFICIENT_FUNDS: i64 = 14;
    pub const POST_ONLY_WOULD_TRADE: i64 = 15;
    pub const NOT_AMENDABLE: i64 = 16;
    pub const UNKNOWN_ASSET: i64 = 17;
    pub const INVALID_AMOUNT: i64 = 18;
    pub const UNKNOWN_COMMAND: i64 = 19;
    pub const USER: i64 = 32;
    pub const MASS_CANCEL: i64 = 33;
    pub const IMMEDIATE_OR_CANCEL: i64 = 34;
    pub const FILL_OR_KILL: i64 = 35;
    pub const SELF_TRADE: i64 = 36;
}

/// One command: `core.commands.Command`, field for field.
///
/// `repr(C)` with sixteen `i64`s is exactly one row of
/// `core.batch.command_dtype()`, so a NumPy batch is read in place.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Command {
    pub kind: i64,
    pub seq: i64,
    pub time: i64,
    pub account: i64,
    pub symbol: i64,
    pub order_id: i64,
    pub side: i64,
    pub order_type: i64,
    pub time_in_force: i64,
    pub price: i64,
    pub quantity: i64,
    pub quote_quantity: i64,
    pub stop_price: i64,
    pub expire_time: i64,
    pub post_only: i64,
    pub stp: i64,
}

impl Command {
    /// Number of integer fields (`len(core.commands.COMMAND_FIELDS)`).
    pub const FIELDS: usize = 16;

    /// Build a command from its sixteen fields in `Command` order.
    pub fn from_fields(f: [i64; 16]) -> Command {
        Command {
            kind: f[0],
            seq: f[1],
            time: f[2],
            account: f[3],
            symbol: f[4],
            order_id: f[5],
            side: f[6],
            order_type: f[7],
            time_in_force: f[8],
            price: f[9],
            quantity: f[10],
            quote_quantity: f[11],
            stop_price: f[12],
            expire_time: f[13],
            post_only: f[14],
            stp: f[15],
        }
    }
}

/// One event: `core.events.Event`, field for field.
///
/// Sixteen `i64`s, one row of `core.batch.event_dtype()`; aligned to a cache
/// line so that each event the engine writes fills exactly two lines.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub kind: i64,
    pub seq: i64,
    pub index: i64,
    pub symbol: i64,
    pub order_id: i64,
    pub account: i64,
    pub side: i64,
    pub price: i64,
    pub quantity: i64,
    pub leaves: i64,
    pub maker_order_id: i64,
    pub maker_account: i64,
    pub maker_leaves: i64,
    pub taker_fee: i64,
    pub maker_fee: i64,
    pub reason: i64,
}

impl Event {
    /// Number of integer fields (`len(core.events.EVENT_FIELDS)`).
    pub const FIELDS: usize = 16;

    /// The fields in `Event` order.
    pub fn fields(&self) -> [i64; 16] {
        [
            self.kind,
            self.seq,
            self.index,
            self.symbol,
            self.order_id,
            self.account,
            self.side,
            self.price,
            self.quantity,
            self.leaves,
            self.maker_order_id,
            self.maker_account,
            self.maker_leaves,
            self.taker_fee,
            self.maker_fee,
            self.reason,
        ]
    }
}

const _: () = assert!(std::mem::size_of::<Command>() == 128);
const _: () = assert!(std::mem::size_of::<Event>() == 128);

/// What the engine needs of a `core.instrument.Instrument`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrumentSpec {
    pub id: i64,
    pub base: i64,
    pub quote: i64,
    pub base_per_lot: i64,
    pub quote_per_tick_lot: i64,
    pub min_quantity: i64,
    pub max_quantity: i64,
    pub max_price: i64,
    pub price_band_bps: i64,
    pub maker_fee_bps: i64,
    pub taker_fee_bps: i64,
    pub reference_price: i64,
}

/// An instrument the engine refuses to register.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InstrumentError {
    #[error("instrument id {0} is already registered")]
    Duplicate(i64),
    #[error("instrument {id}: {what}")]
    Invalid { id: i64, what: &'static str },
}

impl InstrumentSpec {
    /// The limits `core.instrument.Instrument.__post_init__` enforces; they are
    /// what keeps the engine's integer arithmetic inside `i64`.
    pub fn validate(&self) -> Result<(), InstrumentError> {
        let bad = |what| Err(InstrumentError::Invalid { id: self.id, what });
        if !(1..65_536).contains(&self.id) {
            return bad("instrument id must be in 1..65535");
        }
        if !(1..65_536).contains(&self.base) || !(1..65_536).contains(&self.quote) {
            return bad("asset ids must be in 1..65535");
        }
        if self.base == self.quote {
            return bad("base and quote must be different assets");
        }
        if self.base_per_lot < 1 || self.quote_per_tick_lot < 1 {
            return bad("base_per_lot and quote_per_tick_lot must be positive");
        }
        if !(1 <= self.min_quantity && self.min_quantity <= self.max_quantity) {
            return bad("need 1 <= min_quantity <= max_quantity");
        }
        if self.max_price < 1 {
            return bad("max_price must be at least one tick");
        }
        let notional = self.max_price as i128 * self.max_quantity as i128 * self.quote_per_tick_lot as i128;
        if notional > MAX_AMOUNT as i128 {
            return bad("max_price x max_quantity overflows the notional bound (2**62 units)");
        }
        if self.max_quantity as i128 * self.base_per_lot as i128 > MAX_AMOUNT as i128 {
            return bad("max_quantity overflows the amount bound (2**62 units)");
        }
        if !(0..=MAX_BAND_BPS).contains(&self.price_band_bps) {
            return bad("price band must be in 0..10000 bps");
        }
        if !(0..=MAX_FEE_BPS).contains(&self.maker_fee_bps) || !(0..=MAX_FEE_BPS).contains(&self.taker_fee_bps) {
            return bad("fees must be in 0..1000 bps");
        }
        if !(0..=self.max_price).contains(&self.reference_price) {
            return bad("reference price must be within 0..max_price");
        }
        Ok(())
    }
}
