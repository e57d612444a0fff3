//! Order storage and the order book of one instrument.
//!
//! Layout
//! ------
//! * [`OrderSlab`]: every live order (resting or a waiting stop) in one `Vec`
//!   with a free list; an order is named by its slot (`u32`) inside the crate.
//! * [`Level`]: one price level, an intrusive doubly linked FIFO through the
//!   orders' `prev`/`next` slots plus the running total and count, so append,
//!   cancel (unlink) and pop-front are O(1).
//! * [`BookSide`]: the levels of one side in a slab, and `keys`, the sorted
//!   vector of `(priority key, level)` with the best level last (a bid's key is
//!   its price, an ask's minus its price, as in `core.book`). The best level is
//!   `keys.last()` (O(1)); a level is found by price through `index`, a
//!   direct-mapped price -> level table ([`PRICE_BUCKETS`] buckets, a hash-map
//!   spill for prices that share a bucket). A new or emptied level's place in
//!   `keys` is found by walking back a few entries from the best (activity
//!   clusters at the touch), else by a binary search, and it is inserted or
//!   removed with a memmove that is short for the same reason.
//! * [`Book`]: both sides, the last trade price, and the stops in two vectors
//!   sorted so that the ones a price move reaches first come first: buy stops
//!   by `(stop price, id)`, sell stops by `(-stop price, id)`.
//!
//! Invariants
//! ----------
//! * A level in `keys` has `total > 0` and `count > 0` between commands, and
//!   its list holds exactly its `count` orders, all with `leaves > 0`.
//! * An order's `level` is meaningful only while it rests in a book.
//! * Unlike `core.book`, nothing is deleted lazily: a cancelled or filled order
//!   leaves its list at once. Only events and snapshots are observable, and
//!   they see the same live orders in the same order.

use crate::index::DirectMap;
use crate::types::{bps_of, AccountId, OrderId, OrderType, Price, Quantity, Side, Stp, TimeInForce};

/// Buckets of a side's price -> level table (16 bytes each): two levels of a
/// side share a bucket only if their prices are a multiple of this apart.
pub const PRICE_BUCKETS: usize = 1 << 12;

/// The null link of the intrusive lists.
pub const NIL: u32 = u32::MAX;
/// `Order::level` of a free slab slot.
const FREE: u32 = u32::MAX - 1;

/// One live order: the fields the hot paths touch, in exactly one cache line.
///
/// The rest (original quantity, quote amount, stop price, expiry) is in
/// [`OrderCold`], beside it in the slab.
#[repr(C, align(64))]
#[derive(Clone, Debug)]
pub struct Order {
    /// Previous order in the level's FIFO (towards the front), or [`NIL`].
    pub prev: u32,
    /// Next order in the level's FIFO (towards the back), or [`NIL`].
    pub next: u32,
    /// The level slot it rests in (only while resting).
    pub level: u32,
    /// The account's balance slot.
    pub acct: u32,
    /// Open quantity (0 for a buy by quote amount, whose size is its hold).
    pub leaves: Quantity,
    /// Reserved funds of the asset it pays with: quote for a buy, base for a sell.
    pub hold: i64,
    pub price: Price,
    pub id: OrderId,
    pub account: AccountId,
    /// Index of the order's book in the engine.
    pub book: u16,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub stp: Stp,
    pub post_only: bool,
    pub triggered: bool,
}

const _: () = assert!(std::mem::size_of::<Order>() == 64);

impl Order {
    /// A stop order that has not triggered yet (it waits in a stop list, not a
    /// level). The reference tests `stop_price and not triggered`; every stop
    /// order has a stop price and no other order has one, so this is the same.
    #[inline(always)]
    pub fn is_waiting_stop(&self) -> bool {
        self.order_type.is_stop() && !self.triggered
    }
}

/// The fields of an order the hot paths rarely need.
#[derive(Clone, Debug, Default)]
pub struct OrderCold {
    pub quantity: Quantity,
    pub quote_quantity: i64,
    pub stop_price: Price,
    pub expire_time: i64,
}

impl OrderCold {
    pub fn new(quantity: Quantity, quote_quantity: i64, stop_price: Price, expire_time: i64) -> OrderCold {
        OrderCold { quantity, quote_quantity, stop_price, expire_time }
    }
}

/// Slab of live orders with a free list: no allocation per order once warm.
#[derive(Clone, Debug, Default)]
pub struct OrderSlab {
    hot: Vec<Order>,
    cold: Vec<OrderCold>,
    free: Vec<u32>,
}

impl OrderSlab {
    /// Store an order; returns its slot.
    #[inline(always)]
    pub fn alloc(&mut self, order: Order, cold: OrderCold) -> u32 {
        if let Some(slot) = self.free.pop() {
            self.hot[slot as usize] = order;
            self.cold[slot as usize] = cold;
            slot
        } else {
            let slot = self.hot.len() as u32;
            self.hot.push(order);
            self.cold.push(cold);
            slot
        }
    }

    /// Return a slot to the free list (the order must be in no list any more).
    #[inline(always)]
    pub fn release(&mut self, slot: u32) {
        self.hot[slot as usize].level = FREE;
        self.free.push(slot);
    }

    #[inline(always)]
    pub fn cold(&self, slot: u32) -> &OrderCold {
        &self.cold[slot as usize]
    }

    /// Slots of every live order, in slot order (not a deterministic order of ids).
    pub fn live_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.hot.iter().enumerate().filter(|(_, o)| o.level != FREE).map(|(slot, _)| slot as u32)
    }

    pub fn clear(&mut self) {
        self.hot.clear();
        self.cold.clear();
        self.free.clear();
    }
}

impl std::ops::Index<u32> for OrderSlab {
    type Output = Order;
    #[inline(always)]
    fn index(&self, slot: u32) -> &Order {
        &self.hot[slot as usize]
    }
}

impl std::ops::IndexMut<u32> for OrderSlab {
    #[inline(always)]
    fn index_mut(&mut self, slot: u32) -> &mut Order {
        &mut self.hot[slot as usize]
    }
}

/// One price level: a FIFO of orders and the sum of their open quantity.
#[derive(Clone, Copy, Debug)]
pub struct Level {
    pub price: Price,
    pub total: i64,
    pub count: i64,
    pub head: u32,
    pub tail: u32,
}

/// One side of a book.
#[derive(Clone, Debug)]
pub struct BookSide {
    pub side: Side,
    /// +1 for bids, -1 for asks: `key = price * sign`, best key is the largest.
    pub sign: i64,
    pub levels: Vec<Level>,
    free: Vec<u32>,
    /// `(key, level slot)` ascending by key; the best level is last.
    pub keys: Vec<(i64, u32)>,
    /// Price -> level slot, for finding a level without searching `keys`:
    /// direct-mapped by price, as live levels crowd around the touch.
    index: DirectMap,
}

impl BookSide {
    pub fn new(side: Side) -> BookSide {
        BookSide {
            side,
            sign: if side == Side::Buy { 1 } else { -1 },
            levels: Vec::new(),
            free: Vec::new(),
            keys: Vec::new(),
            index: DirectMap::with_buckets(PRICE_BUCKETS),
        }
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The best price on this side, or `None` when it is empty.
    #[inline(always)]
    pub fn best_price(&self) -> Option<Price> {
        self.keys.last().map(|&(key, _)| Price(key * self.sign))
    }

    /// The level slot at `price`, creating an empty level if there is none.
    #[inline(always)]
    pub fn level_at(&mut self, price: Price) -> u32 {
        match self.index.get(price.0) {
            Some(slot) => slot,
            None => self.new_level(price),
        }
    }

    /// Where `key` is or would go in `keys` (the first entry not below it).
    ///
    /// Levels open and empty near the touch (the end of `keys`) far more often
    /// than deep in the book: walk back from the end a few steps before falling
    /// back to a binary search of the rest.
    #[inline(always)]
    fn position(&self, key: i64) -> usize {
        const WALK: usize = 8;
        let keys = &self.keys;
        let mut at = keys.len();
        let stop = at.saturating_sub(WALK);
        while at > stop && keys[at - 1].0 >= key {
            at -= 1;
        }
        if at == stop && at > 0 && keys[at - 1].0 >= key {
            keys[..at].partition_point(|&(k, _)| k < key)
        } else {
            at
        }
    }

    #[inline(never)]
    fn new_level(&mut self, price: Price) -> u32 {
        let key = price.0 * self.sign;
        let at = self.position(key);
        let level = Level { price, total: 0, count: 0, head: NIL, tail: NIL };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.levels[slot as usize] = level;
                slot
            }
            None => {
                self.levels.push(level);
                (self.levels.len() - 1) as u32
            }
        };
        self.keys.insert(at, (key, slot));
        self.index.insert_new(price.0, slot);
        slot
    }

    /// Append a resting order at the back of its price level.
    #[inline(always)]
    pub fn push_back(&mut self, orders: &mut OrderSlab, slot: u32) -> u32 {
        let (price, leaves) = {
            let o = &orders[slot];
            (o.price, o.leaves)
        };
        let lv = self.level_at(price);
        let level = &mut self.levels[lv as usize];
        let tail = level.tail;
        {
            let o = &mut orders[slot];
            o.prev = tail;
            o.next = NIL;
            o.level = lv;
        }
        if tail == NIL {
            level.head = slot;
        } else {
            orders[tail].next = slot;
        }
        level.tail = slot;
        level.total += leaves.0;
        level.count += 1;
        lv
    }

    /// Take an order out of its level's list without touching total or count.
    #[inline(always)]
    pub fn detach(&mut self, orders: &mut OrderSlab, slot: u32) {
        let (prev, next, lv) = {
            let o = &orders[slot];
            (o.prev, o.next, o.level)
        };
        let level = &mut self.levels[lv as usize];
        if prev == NIL {
            level.head = next;
        } else {
            orders[prev].next = next;
        }
        if next == NIL {
            level.tail = prev;
        } else {
            orders[next].prev = prev;
        }
    }

    /// Take a resting order out of its level (which may be left empty, see
    /// [`BookSide::drop_if_empty`]); returns the level slot.
    #[inline(always)]
    pub fn unlink(&mut self, orders: &mut OrderSlab, slot: u32) -> u32 {
        self.detach(orders, slot);
        let o = &orders[slot];
        let level = &mut self.levels[o.level as usize];
        level.total -= o.leaves.0;
        level.count -= 1;
        o.level
    }

    /// Remove a level whose total has reached zero.
    #[inline(always)]
    pub fn drop_if_empty(&mut self, lv: u32) {
        if self.levels[lv as usize].total == 0 {
            self.drop_level(lv);
        }
    }

    #[inline(never)]
    fn drop_level(&mut self, lv: u32) {
        let price = self.levels[lv as usize].price;
        let key = price.0 * self.sign;
        self.index.remove(price.0);
        match self.keys.last() {
            Some(&(k, _)) if k == key => {
                self.keys.pop();
            }
            _ => {
                let at = self.position(key);
                if at < self.keys.len() && self.keys[at].0 == key {
                    self.keys.remove(at);
                }
            }
        }
        self.free.push(lv);
    }

    /// Level slots, best first.
    pub fn levels_best_first(&self) -> impl Iterator<Item = &Level> + '_ {
        self.keys.iter().rev().map(move |&(_, lv)| &self.levels[lv as usize])
    }

    /// The slots of a level's orders, front to back.
    pub fn level_orders<'a>(&self, orders: &'a OrderSlab, lv: u32) -> LevelIter<'a> {
        LevelIter { orders, next: self.levels[lv as usize].head }
    }
}

/// Front-to-back walk of one level's FIFO.
pub struct LevelIter<'a> {
    orders: &'a OrderSlab,
    next: u32,
}

impl Iterator for LevelIter<'_> {
    type Item = u32;
    #[inline]
    fn next(&mut self) -> Option<u32> {
        if self.next == NIL {
            return None;
        }
        let slot = self.next;
        self.next = self.orders[slot].next;
        Some(slot)
    }
}

/// The book of one instrument.
#[derive(Clone, Debug)]
pub struct Book {
    pub symbol: i64,
    /// The last trade price (0 before the first trade); set with [`Book::set_last_price`].
    pub last_price: Price,
    band_bps: i64,
    reference_price: i64,
    /// The price band around the reference price, kept current with `last_price`:
    /// `None` when there is no band (no bps, or no reference price yet).
    band: Option<(i64, i64)>,
    /// Bids (`sides[0]`) and asks (`sides[1]`), indexed by `Side` so that the
    /// side-generic hot paths do not branch on a 50/50 coin.
    pub sides: [BookSide; 2],
    /// `(stop price, id)` ascending: the lowest stop triggers first on a rise.
    pub buy_stops: Vec<(i64, OrderId)>,
    /// `(-stop price, id)` ascending: the highest stop triggers first on a fall.
    pub sell_stops: Vec<(i64, OrderId)>,
}

impl Book {
    pub fn new(symbol: i64, band_bps: i64, reference_price: i64) -> Book {
        let mut book = Book {
            symbol,
            last_price: Price(0),
            band_bps,
            reference_price,
            band: None,
            sides: [BookSide::new(Side::Buy), BookSide::new(Side::Sell)],
            buy_stops: Vec::new(),
            sell_stops: Vec::new(),
        };
        book.update_band();
        book
    }

    /// Record a trade price (and move the price band with it).
    #[inline(always)]
    pub fn set_last_price(&mut self, price: Price) {
        if price != self.last_price {
            self.last_price = price;
            self.update_band();
        }
    }

    /// `OrderBook.in_band`'s bounds: `reference -/+ reference * bps // 10_000`,
    /// the reference being the last trade, else the instrument's reference price.
    fn update_band(&mut self) {
        let reference = if self.last_price.0 != 0 { self.last_price.0 } else { self.reference_price };
        self.band = if self.band_bps == 0 || reference == 0 {
            None
        } else {
            let width = bps_of(reference, self.band_bps);
            // width <= reference <= 2**62: the sum can exceed i64 only at the
            // very top, where saturating changes no comparison with a price.
            Some((reference - width, reference.saturating_add(width)))
        };
    }

    /// Is a limit price inside the price band?
    #[inline(always)]
    pub fn in_band(&self, price: Price) -> bool {
        match self.band {
            None => true,
            Some((lo, hi)) => lo <= price.0 && price.0 <= hi,
        }
    }

    /// How far a market order may trade: the band's edge on its side, or no limit.
    #[inline(always)]
    pub fn market_limit(&self, side: Side) -> Option<i64> {
        self.band.map(|(lo, hi)| if side == Side::Buy { hi } else { lo })
    }

    #[inline(always)]
    pub fn side(&self, side: Side) -> &BookSide {
        &self.sides[side as usize]
    }

    #[inline(always)]
    pub fn side_mut(&mut self, side: Side) -> &mut BookSide {
        &mut self.sides[side as usize]
    }

    #[inline(always)]
    pub fn bids(&self) -> &BookSide {
        &self.sides[0]
    }

    #[inline(always)]
    pub fn asks(&self) -> &BookSide {
        &self.sides[1]
    }

    /// Would a limit order at `price` on `side` trade on arrival? (The
    /// opposite best key, `price x sign`, reaches the order's key.)
    #[inline(always)]
    pub fn would_cross(&self, side: Side, price: Price) -> bool {
        let opposite = &self.sides[side.opposite() as usize];
        match opposite.keys.last() {
            Some(&(best, _)) => best >= price.0 * opposite.sign,
            None => false,
        }
    }

    /// Wait a stop order in its trigger list.
    pub fn add_stop(&mut self, side: Side, stop_price: Price, id: OrderId) {
        let (stops, entry) = match side {
            Side::Buy => (&mut self.buy_stops, (stop_price.0, id)),
            Side::Sell => (&mut self.sell_stops, (-stop_price.0, id)),
        };
        let at = stops.partition_point(|e| *e < entry);
        stops.insert(at, entry);
    }

    pub fn remove_stop(&mut self, side: Side, stop_price: Price, id: OrderId) {
        let (stops, entry) = match side {
            Side::Buy => (&mut self.buy_stops, (stop_price.0, id)),
            Side::Sell => (&mut self.sell_stops, (-stop_price.0, id)),
        };
        let at = stops.partition_point(|e| *e < entry);
        if at < stops.len() && stops[at] == entry {
            stops.remove(at);
        }
    }

    #[inline(always)]
    pub fn has_stops(&self) -> bool {
        !(self.buy_stops.is_empty() && self.sell_stops.is_empty())
    }

    /// Remove and return the earliest-placed stop the last price reaches.
    ///
    /// A buy stop triggers when the last trade is at or above its stop price, a
    /// sell stop when it is at or below; among those reached, the order placed
    /// first (lowest id) goes first.
    pub fn pop_triggered(&mut self) -> Option<OrderId> {
        let last = self.last_price.0;
        let mut best: Option<(OrderId, bool, usize)> = None;
        for (at, &(key, id)) in self.buy_stops.iter().enumerate() {
            if key > last {
                break;
            }
            if best.is_none_or(|(b, _, _)| id < b) {
                best = Some((id, true, at));
            }
        }
        for (at, &(key, id)) in self.sell_stops.iter().enumerate() {
            if key > -last {
                break;
            }
            if best.is_none_or(|(b, _, _)| id < b) {
                best = Some((id, false, at));
            }
        }
        let (id, buy, at) = best?;
        if buy {
            self.buy_stops.remove(at);
        } else {
            self.sell_stops.remove(at);
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: i64, side: Side, price: i64, leaves: i64) -> (Order, OrderCold) {
        (Order {
            prev: NIL,
            next: NIL,
            level: NIL,
            acct: 0,
            leaves: Quantity(leaves),
            hold: 0,
            price: Price(price),
            id: OrderId(id),
            account: AccountId(1),
            book: 0,
            side,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            stp: Stp::None,
            post_only: false,
            triggered: false,
        }, OrderCold::new(Quantity(leaves), 0, Price(0), 0))
    }

    fn ids(side: &BookSide, orders: &OrderSlab, lv: u32) -> Vec<i64> {
        side.level_orders(orders, lv).map(|s| orders[s].id.0).collect()
    }

    #[test]
    fn book_levels_sorted_best_last() {
        let mut orders = OrderSlab::default();
        let mut bids = BookSide::new(Side::Buy);
        let mut asks = BookSide::new(Side::Sell);
        for (id, price) in [(1, 100), (2, 102), (3, 101)] {
            let s = { let (o, c) = order(id, Side::Buy, price, 5); orders.alloc(o, c) };
            bids.push_back(&mut orders, s);
        }
        for (id, price) in [(4, 105), (5, 103), (6, 104)] {
            let s = { let (o, c) = order(id, Side::Sell, price, 5); orders.alloc(o, c) };
            asks.push_back(&mut orders, s);
        }
        assert_eq!(bids.best_price(), Some(Price(102)));
        assert_eq!(asks.best_price(), Some(Price(103)));
        let bid_prices: Vec<i64> = bids.levels_best_first().map(|l| l.price.0).collect();
        let ask_prices: Vec<i64> = asks.levels_best_first().map(|l| l.price.0).collect();
        assert_eq!(bid_prices, vec![102, 101, 100]);
        assert_eq!(ask_prices, vec![103, 104, 105]);
    }

    #[test]
    fn book_fifo_append_and_unlink_middle() {
        let mut orders = OrderSlab::default();
        let mut bids = BookSide::new(Side::Buy);
        let slots: Vec<u32> = (1..=4)
            .map(|id| {
                let s = { let (o, c) = order(id, Side::Buy, 100, id); orders.alloc(o, c) };
                bids.push_back(&mut orders, s);
                s
            })
            .collect();
        let lv = bids.keys[0].1;
        assert_eq!(ids(&bids, &orders, lv), vec![1, 2, 3, 4]);
        assert_eq!(bids.levels[lv as usize].total, 10);
        bids.unlink(&mut orders, slots[1]);
        orders.release(slots[1]);
        assert_eq!(ids(&bids, &orders, lv), vec![1, 3, 4]);
        assert_eq!(bids.levels[lv as usize].total, 8);
        assert_eq!(bids.levels[lv as usize].count, 3);
        bids.unlink(&mut orders, slots[0]);
        bids.unlink(&mut orders, slots[3]);
        assert_eq!(ids(&bids, &orders, lv), vec![3]);
        bids.unlink(&mut orders, slots[2]);
        bids.drop_if_empty(lv);
        assert!(bids.is_empty());
        // A freed slot is reused.
        let again = { let (o, c) = order(9, Side::Buy, 99, 1); orders.alloc(o, c) };
        assert_eq!(again, slots[1]);
    }

    #[test]
    fn book_drop_non_best_level() {
        let mut orders = OrderSlab::default();
        let mut asks = BookSide::new(Side::Sell);
        let mut slots = Vec::new();
        for (id, price) in [(1, 103), (2, 104), (3, 105)] {
            let s = { let (o, c) = order(id, Side::Sell, price, 5); orders.alloc(o, c) };
            asks.push_back(&mut orders, s);
            slots.push(s);
        }
        let lv = asks.unlink(&mut orders, slots[1]);
        asks.drop_if_empty(lv);
        let prices: Vec<i64> = asks.levels_best_first().map(|l| l.price.0).collect();
        assert_eq!(prices, vec![103, 105]);
        // The freed level slot is reused for a new price.
        let s = { let (o, c) = order(4, Side::Sell, 101, 1); orders.alloc(o, c) };
        assert_eq!(asks.push_back(&mut orders, s), lv);
        assert_eq!(asks.best_price(), Some(Price(101)));
    }

    #[test]
    fn book_would_cross() {
        let mut orders = OrderSlab::default();
        let mut book = Book::new(1, 0, 0);
        let s = { let (o, c) = order(1, Side::Sell, 100, 1); orders.alloc(o, c) };
        book.side_mut(Side::Sell).push_back(&mut orders, s);
        assert!(book.would_cross(Side::Buy, Price(100)));
        assert!(!book.would_cross(Side::Buy, Price(99)));
        assert!(!book.would_cross(Side::Sell, Price(1)));
    }

    #[test]
    fn book_stops_trigger_earliest_placed_first() {
        let mut book = Book::new(1, 0, 0);
        book.add_stop(Side::Buy, Price(110), OrderId(5));
        book.add_stop(Side::Buy, Price(105), OrderId(7));
        book.add_stop(Side::Sell, Price(95), OrderId(3));
        book.add_stop(Side::Sell, Price(90), OrderId(2));
        assert_eq!(book.buy_stops, vec![(105, OrderId(7)), (110, OrderId(5))]);
        assert_eq!(book.sell_stops, vec![(-95, OrderId(3)), (-90, OrderId(2))]);
        book.last_price = Price(100);
        assert_eq!(book.pop_triggered(), None);
        book.last_price = Price(110);
        assert_eq!(book.pop_triggered(), Some(OrderId(5)));
        assert_eq!(book.pop_triggered(), Some(OrderId(7)));
        assert_eq!(book.pop_triggered(), None);
        book.last_price = Price(90);
        assert_eq!(book.pop_triggered(), Some(OrderId(2)));
        assert_eq!(book.pop_triggered(), Some(OrderId(3)));
        book.remove_stop(Side::Buy, Price(1), OrderId(1));
        assert!(!book.has_stops());
    }
}
