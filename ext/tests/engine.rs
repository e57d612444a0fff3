//! Named cases of the engine's rules, without Python (`cargo test`).
//!
//! The differential tests (`tests/test_differential.py`) check the engine
//! against the reference on random streams; these pin individual rules with
//! hand-computed expectations.

use _native::types::{command_kind as ck, event_kind as ek, reason as r};
use _native::{Command, Engine, Event, InstrumentSpec};

const ALICE: i64 = 11;
const BOB: i64 = 12;
const BTC: i64 = 1;
const USD: i64 = 2;
const BUY: i64 = 0;
const SELL: i64 = 1;
const MARKET: i64 = 1;
const STOP_LIMIT: i64 = 2;
const STOP_MARKET: i64 = 3;
const GTC: i64 = 0;
const IOC: i64 = 1;
const FOK: i64 = 2;
const GTD: i64 = 3;

fn spec() -> InstrumentSpec {
    InstrumentSpec {
        id: 1,
        base: BTC,
        quote: USD,
        base_per_lot: 1,
        quote_per_tick_lot: 1,
        min_quantity: 1,
        max_quantity: 1_000_000,
        max_price: 1_000_000,
        price_band_bps: 0,
        maker_fee_bps: 0,
        taker_fee_bps: 0,
        reference_price: 0,
    }
}

/// An engine with instrument 1 and ALICE and BOB funded with 1,000,000 of each asset (seq 1..4).
fn engine_with(spec: InstrumentSpec) -> Engine {
    let mut e = Engine::new();
    e.add_instrument(spec).expect("valid instrument");
    let mut seq = 0;
    for account in [ALICE, BOB] {
        for asset in [BTC, USD] {
            seq += 1;
            e.submit(&deposit(seq, account, asset, 1_000_000));
        }
    }
    e
}

fn engine() -> Engine {
    engine_with(spec())
}

fn cmd(kind: i64, seq: i64) -> Command {
    Command { kind, seq, time: seq * 10, ..Command::default() }
}

fn deposit(seq: i64, account: i64, asset: i64, amount: i64) -> Command {
    Command { account, symbol: asset, quantity: amount, ..cmd(ck::DEPOSIT, seq) }
}

fn order(seq: i64, account: i64, side: i64, quantity: i64, price: i64) -> Command {
    Command { account, symbol: 1, side, quantity, price, ..cmd(ck::NEW_ORDER, seq) }
}

fn cancel(seq: i64, account: i64, order_id: i64) -> Command {
    Command { account, order_id, ..cmd(ck::CANCEL, seq) }
}

fn amend(seq: i64, account: i64, order_id: i64, price: i64, quantity: i64) -> Command {
    Command { account, order_id, price, quantity, ..cmd(ck::AMEND, seq) }
}

fn kinds(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.kind).collect()
}

fn trades(events: &[Event]) -> Vec<(i64, i64, i64)> {
    events.iter().filter(|e| e.kind == ek::TRADE).map(|e| (e.price, e.quantity, e.maker_order_id)).collect()
}

type Levels = Vec<(i64, i64, i64)>;

fn depth(e: &Engine) -> (Levels, Levels) {
    e.depth(1, 10).expect("symbol 1 exists")
}

#[test]
fn matching_limit_rests_then_crosses_in_price_time_priority() {
    let mut e = engine();
    assert_eq!(kinds(e.submit(&order(10, BOB, SELL, 5, 101))), vec![ek::ACCEPTED, ek::BOOK]);
    e.submit(&order(11, BOB, SELL, 5, 100));
    e.submit(&order(12, BOB, SELL, 5, 100));
    let ev = e.submit(&order(13, ALICE, BUY, 12, 101)).to_vec();
    assert_eq!(trades(&ev), vec![(100, 5, 11), (100, 5, 12), (101, 2, 10)]);
    assert_eq!(kinds(&ev), vec![ek::ACCEPTED, ek::TRADE, ek::TRADE, ek::BOOK, ek::TRADE, ek::BOOK]);
    assert_eq!(ev.iter().map(|e| e.index).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>());
    assert!(ev.iter().all(|e| e.seq == 13));
    assert_eq!(depth(&e), (vec![], vec![(101, 3, 1)]));
    assert_eq!(e.last_price(1), Some(101));
    // ALICE paid 5*100 + 5*100 + 2*101 and held her limit's notional only for what traded.
    assert_eq!(e.balance(ALICE, USD), Ok((1_000_000 - 1_202, 0)));
    assert_eq!(e.balance(ALICE, BTC), Ok((1_000_012, 0)));
    assert_eq!(e.balance(BOB, BTC), Ok((1_000_000 - 15, 3)));
}

#[test]
fn matching_fees_round_down_to_the_fee_account() {
    let mut e = engine_with(InstrumentSpec { maker_fee_bps: 3, taker_fee_bps: 7, base_per_lot: 777, ..spec() });
    e.submit(&deposit(5, BOB, BTC, 50_000_000));
    e.submit(&deposit(6, ALICE, USD, 5_000_000));
    e.submit(&order(10, BOB, SELL, 1_000, 1_234));
    let ev = e.submit(&order(11, ALICE, BUY, 1_000, 1_234)).to_vec();
    let trade = ev.iter().find(|e| e.kind == ek::TRADE).expect("a trade");
    // Taker (buyer) pays its fee in base: floor(777_000 * 7 / 10_000) = 543;
    // maker (seller) in quote: floor(1_234_000 * 3 / 10_000) = 370.
    assert_eq!((trade.taker_fee, trade.maker_fee), (543, 370));
    assert_eq!(e.balance(0, BTC), Ok((543, 0)));
    assert_eq!(e.balance(0, USD), Ok((370, 0)));
}

#[test]
fn matching_market_buy_spends_its_budget_and_stops_at_the_band() {
    let mut e = engine_with(InstrumentSpec { price_band_bps: 1_000, reference_price: 100, ..spec() });
    e.submit(&order(10, BOB, SELL, 1, 105));
    e.submit(&order(11, ALICE, BUY, 1, 105)); // last 105: band [95, 115]
    e.submit(&order(12, BOB, SELL, 5, 115));
    e.submit(&order(13, BOB, SELL, 1, 96));
    e.submit(&order(14, ALICE, BUY, 1, 96)); // last 96: band [87, 105]
    let ev = e.submit(&order(15, BOB, SELL, 5, 116)).to_vec();
    assert_eq!((ev[0].kind, ev[0].reason), (ek::REJECTED, r::PRICE_OUT_OF_BAND));
    e.submit(&order(16, BOB, SELL, 5, 100));
    let market = Command { order_type: MARKET, time_in_force: IOC, ..order(17, ALICE, BUY, 20, 0) };
    let ev = e.submit(&market).to_vec();
    // The market buy may trade up to the band's edge (105) only.
    assert_eq!(trades(&ev), vec![(100, 5, 16)]);
    let end = ev.last().expect("events");
    assert_eq!((end.kind, end.quantity, end.reason), (ek::CANCELLED, 15, r::PRICE_OUT_OF_BAND));
    // Its budget (everything available) came back, less what it paid.
    assert_eq!(e.balance(ALICE, USD), Ok((1_000_000 - 105 - 96 - 500, 0)));
}

#[test]
fn matching_market_buy_by_quote_amount_ends_when_a_lot_is_unaffordable() {
    let mut e = engine();
    e.submit(&order(10, BOB, SELL, 10, 100));
    let by_quote = Command {
        order_type: MARKET,
        time_in_force: IOC,
        quote_quantity: 350,
        ..order(11, ALICE, BUY, 0, 0)
    };
    let ev = e.submit(&by_quote).to_vec();
    assert_eq!(trades(&ev), vec![(100, 3, 10)]);
    // Spent down to less than a lot: done, no CANCELLED event.
    assert_eq!(kinds(&ev), vec![ek::ACCEPTED, ek::TRADE, ek::BOOK]);
    assert_eq!(e.balance(ALICE, USD), Ok((1_000_000 - 300, 0)));
}

#[test]
fn matching_fok_precheck_kills_without_trading() {
    let mut e = engine();
    e.submit(&order(10, BOB, SELL, 5, 100));
    let fok = Command { time_in_force: FOK, ..order(11, ALICE, BUY, 6, 100) };
    let ev = e.submit(&fok).to_vec();
    assert_eq!(kinds(&ev), vec![ek::ACCEPTED, ek::CANCELLED]);
    assert_eq!(ev[1].reason, r::FILL_OR_KILL);
    assert_eq!(depth(&e).1, vec![(100, 5, 1)]);
    let fok = Command { time_in_force: FOK, ..order(12, ALICE, BUY, 5, 100) };
    assert_eq!(trades(e.submit(&fok)), vec![(100, 5, 10)]);
}

#[test]
fn stp_cancel_newest_cancels_the_taker() {
    let mut e = engine();
    e.submit(&order(10, ALICE, SELL, 5, 100));
    let ev = e.submit(&Command { stp: 1, ..order(11, ALICE, BUY, 5, 100) }).to_vec();
    // The level is untouched: no book delta, just the taker's cancel.
    assert_eq!(kinds(&ev), vec![ek::ACCEPTED, ek::CANCELLED]);
    assert_eq!((ev[1].order_id, ev[1].reason), (11, r::SELF_TRADE));
    assert_eq!(depth(&e).1, vec![(100, 5, 1)]);
}

#[test]
fn stp_cancel_oldest_clears_own_makers_and_trades_on() {
    let mut e = engine();
    e.submit(&order(10, ALICE, SELL, 5, 100));
    e.submit(&order(11, BOB, SELL, 5, 100));
    let ev = e.submit(&Command { stp: 2, ..order(12, ALICE, BUY, 5, 100) }).to_vec();
    assert_eq!(kinds(&ev), vec![ek::ACCEPTED, ek::CANCELLED, ek::TRADE, ek::BOOK]);
    assert_eq!((ev[1].order_id, ev[1].quantity, ev[1].reason), (10, 5, r::SELF_TRADE));
    assert_eq!(trades(&ev), vec![(100, 5, 11)]);
    assert_eq!(e.balance(ALICE, BTC), Ok((1_000_005, 0)));
}

#[test]
fn stp_cancel_both_and_decrement() {
    let mut e = engine();
    e.submit(&order(10, ALICE, SELL, 5, 100));
    let ev = e.submit(&Command { stp: 3, ..order(11, ALICE, BUY, 3, 100) }).to_vec();
    assert_eq!(kinds(&ev), vec![ek::ACCEPTED, ek::CANCELLED, ek::BOOK, ek::CANCELLED]);
    assert_eq!((ev[1].order_id, ev[3].order_id), (10, 11));
    assert!(depth(&e).1.is_empty());

    e.submit(&order(12, ALICE, SELL, 5, 100));
    let ev = e.submit(&Command { stp: 4, ..order(13, ALICE, BUY, 3, 100) }).to_vec();
    // Both sides lose 3 lots without a trade; the maker keeps 2.
    assert_eq!(kinds(&ev), vec![ek::ACCEPTED, ek::CANCELLED, ek::CANCELLED, ek::BOOK]);
    assert_eq!((ev[1].order_id, ev[1].quantity, ev[1].leaves), (12, 3, 2));
    assert_eq!((ev[2].order_id, ev[2].quantity, ev[2].leaves), (13, 3, 0));
    assert_eq!(depth(&e).1, vec![(100, 2, 1)]);
    assert_eq!(e.balance(ALICE, BTC), Ok((1_000_000 - 2, 2)));
    assert_eq!(e.balance(ALICE, USD), Ok((1_000_000, 0)));
}

#[test]
fn stops_trigger_in_placement_order_and_cascade() {
    let mut e = engine();
    e.submit(&order(10, BOB, SELL, 1, 100));
    e.submit(&order(11, BOB, SELL, 1, 105));
    // Two buy stops: the later-placed one has the lower stop price.
    let stop = |seq, stop_price| Command {
        order_type: STOP_MARKET,
        time_in_force: IOC,
        price: 0,
        stop_price,
        ..order(seq, ALICE, BUY, 1, 0)
    };
    assert_eq!(kinds(e.submit(&stop(12, 100))), vec![ek::ACCEPTED]);
    assert_eq!(kinds(e.submit(&stop(13, 99))), vec![ek::ACCEPTED]);
    let ev = e.submit(&order(14, ALICE, BUY, 1, 100)).to_vec();
    let triggered: Vec<i64> = ev.iter().filter(|e| e.kind == ek::TRIGGERED).map(|e| e.order_id).collect();
    // The trade at 100 reaches both; the earlier placed (12) goes first and
    // its trade at 105 keeps 13 reached; 13 finds nothing left and is cancelled.
    assert_eq!(triggered, vec![12, 13]);
    assert_eq!(trades(&ev), vec![(100, 1, 10), (105, 1, 11)]);
    assert_eq!(ev.last().map(|e| (e.kind, e.order_id, e.reason)), Some((ek::CANCELLED, 13, r::IMMEDIATE_OR_CANCEL)));
    assert_eq!(e.last_price(1), Some(105));
}

#[test]
fn stops_cannot_be_amended_but_can_be_cancelled() {
    let mut e = engine();
    let stop = Command { order_type: STOP_LIMIT, stop_price: 120, ..order(10, ALICE, BUY, 2, 121) };
    e.submit(&stop);
    assert_eq!(e.balance(ALICE, USD), Ok((1_000_000 - 242, 242)));
    let ev = e.submit(&amend(11, ALICE, 10, 125, 0)).to_vec();
    assert_eq!((ev[0].kind, ev[0].reason), (ek::REJECTED, r::NOT_AMENDABLE));
    let ev = e.submit(&cancel(12, ALICE, 10)).to_vec();
    assert_eq!(kinds(&ev), vec![ek::CANCELLED]);
    assert_eq!(e.balance(ALICE, USD), Ok((1_000_000, 0)));
}

#[test]
fn amend_decrease_keeps_priority_increase_and_move_lose_it() {
    let mut e = engine();
    e.submit(&order(10, ALICE, BUY, 5, 100));
    e.submit(&order(11, BOB, BUY, 5, 100));
    let ev = e.submit(&amend(12, ALICE, 10, 0, 3)).to_vec();
    assert_eq!(kinds(&ev), vec![ek::AMENDED, ek::BOOK]);
    assert_eq!(ev[1].quantity, 8);
    assert_eq!(e.balance(ALICE, USD), Ok((1_000_000 - 300, 300)));
    // Still first: a sell of 3 trades with ALICE's order.
    assert_eq!(trades(e.submit(&order(13, BOB, SELL, 3, 100))), vec![(100, 3, 10)]);
    e.submit(&order(14, ALICE, BUY, 5, 100));
    e.submit(&amend(15, ALICE, 14, 0, 6)); // increase: behind BOB's 11
    assert_eq!(trades(e.submit(&order(16, BOB, SELL, 1, 100))), vec![(100, 1, 11)]);
    // A move matches like a new order.
    e.submit(&order(17, BOB, SELL, 2, 102));
    let ev = e.submit(&amend(18, ALICE, 14, 102, 0)).to_vec();
    assert_eq!(kinds(&ev), vec![ek::AMENDED, ek::BOOK, ek::TRADE, ek::BOOK, ek::BOOK]);
    assert_eq!(trades(&ev), vec![(102, 2, 17)]);
    assert_eq!(depth(&e).0, vec![(102, 4, 1), (100, 4, 1)]);
}

#[test]
fn amend_rejections_name_the_orders_symbol_and_check_the_minimum() {
    let mut e = engine_with(InstrumentSpec { min_quantity: 2, ..spec() });
    e.submit(&order(10, ALICE, BUY, 5, 100));
    let ev = e.submit(&amend(11, ALICE, 10, 0, 1)).to_vec();
    assert_eq!((ev[0].kind, ev[0].symbol, ev[0].reason), (ek::REJECTED, 1, r::INVALID_QUANTITY));
    let ev = e.submit(&amend(12, BOB, 10, 0, 3)).to_vec();
    // An unknown (here: foreign) order: the command's own symbol (0).
    assert_eq!((ev[0].symbol, ev[0].reason), (0, r::UNKNOWN_ORDER));
}

#[test]
fn matching_buy_by_quote_that_cannot_afford_a_lot_is_cancelled_for_funds() {
    let mut e = engine();
    e.submit(&order(10, BOB, SELL, 10, 100));
    let by_quote = Command { order_type: MARKET, time_in_force: IOC, quote_quantity: 99, ..order(11, ALICE, BUY, 0, 0) };
    let ev = e.submit(&by_quote).to_vec();
    assert_eq!(kinds(&ev), vec![ek::ACCEPTED, ek::CANCELLED]);
    assert_eq!(ev[1].reason, r::INSUFFICIENT_FUNDS);
    assert_eq!(e.balance(ALICE, USD), Ok((1_000_000, 0)));
}

#[test]
fn amend_post_only_and_funds_are_checked() {
    let mut e = engine();
    e.submit(&order(10, BOB, SELL, 5, 105));
    e.submit(&Command { post_only: 1, ..order(11, ALICE, BUY, 5, 100) });
    let ev = e.submit(&amend(12, ALICE, 11, 105, 0)).to_vec();
    assert_eq!((ev[0].kind, ev[0].reason), (ek::REJECTED, r::POST_ONLY_WOULD_TRADE));
    let ev = e.submit(&amend(13, ALICE, 11, 0, 1_000_000)).to_vec();
    assert_eq!((ev[0].kind, ev[0].reason), (ek::REJECTED, r::INSUFFICIENT_FUNDS));
    let ev = e.submit(&amend(14, BOB, 11, 0, 1)).to_vec();
    assert_eq!((ev[0].kind, ev[0].reason), (ek::REJECTED, r::UNKNOWN_ORDER));
}

#[test]
fn gtd_orders_expire_when_time_passes() {
    let mut e = engine();
    let gtd = Command { time_in_force: GTD, expire_time: 150, ..order(10, ALICE, BUY, 5, 100) };
    assert_eq!(kinds(e.submit(&gtd)), vec![ek::ACCEPTED, ek::BOOK]);
    assert_eq!(kinds(e.submit(&cmd(ck::TICK, 14))), Vec::<i64>::new()); // time 140
    let ev = e.submit(&cmd(ck::TICK, 15)).to_vec(); // time 150
    assert_eq!(kinds(&ev), vec![ek::EXPIRED, ek::BOOK]);
    assert_eq!(e.balance(ALICE, USD), Ok((1_000_000, 0)));
    let late = Command { time_in_force: GTD, expire_time: 150, ..order(16, ALICE, BUY, 5, 100) };
    assert_eq!(e.submit(&late)[0].reason, r::INVALID_EXPIRE_TIME);
}

#[test]
fn commands_at_or_below_the_sequence_are_skipped_and_time_never_goes_back() {
    let mut e = engine();
    e.submit(&order(10, ALICE, BUY, 5, 100));
    assert!(e.submit(&order(10, ALICE, BUY, 5, 100)).is_empty());
    assert!(e.submit(&order(3, ALICE, BUY, 5, 100)).is_empty());
    assert_eq!(e.sequence(), 10);
    e.submit(&Command { time: 5, ..cmd(ck::TICK, 11) });
    assert_eq!(e.time(), 100);
}

#[test]
fn validation_reports_the_first_failing_rule() {
    let mut e = engine();
    let bad = Command { side: 7, quantity: 0, price: -1, ..order(10, ALICE, BUY, 5, 100) };
    assert_eq!(e.submit(&bad)[0].reason, r::INVALID_SIDE);
    let bad = Command { symbol: 9, account: 0, ..order(11, ALICE, BUY, 5, 100) };
    assert_eq!(e.submit(&bad)[0].reason, r::UNKNOWN_SYMBOL);
    let bad = Command { quantity: 0, price: -1, ..order(12, ALICE, BUY, 5, 100) };
    assert_eq!(e.submit(&bad)[0].reason, r::INVALID_QUANTITY);
    let bad = Command { order_type: MARKET, time_in_force: GTC, ..order(13, ALICE, BUY, 5, 0) };
    assert_eq!(e.submit(&bad)[0].reason, r::INVALID_TIME_IN_FORCE);
    let bad = Command { post_only: 1, time_in_force: IOC, ..order(14, ALICE, BUY, 5, 100) };
    assert_eq!(e.submit(&bad)[0].reason, r::INVALID_POST_ONLY);
    let bad = Command { kind: 42, order_id: 77, ..order(15, ALICE, BUY, 5, 100) };
    let ev = e.submit(&bad).to_vec();
    assert_eq!((ev[0].kind, ev[0].order_id, ev[0].reason), (ek::REJECTED, 77, r::UNKNOWN_COMMAND));
    let poor = order(16, ALICE, BUY, 1_000, 1_001);
    assert_eq!(e.submit(&poor)[0].reason, r::INSUFFICIENT_FUNDS);
}

#[test]
fn mass_cancel_removes_orders_and_stops_by_id() {
    let mut e = engine();
    e.submit(&order(10, ALICE, BUY, 1, 99));
    e.submit(&Command { order_type: STOP_LIMIT, stop_price: 200, ..order(11, ALICE, BUY, 1, 201) });
    e.submit(&order(12, ALICE, SELL, 1, 300));
    e.submit(&order(13, BOB, BUY, 1, 98));
    let ev = e.submit(&Command { account: ALICE, ..cmd(ck::MASS_CANCEL, 14) }).to_vec();
    let cancelled: Vec<i64> = ev.iter().filter(|e| e.kind == ek::CANCELLED).map(|e| e.order_id).collect();
    assert_eq!(cancelled, vec![10, 11, 12]);
    assert!(ev.iter().filter(|e| e.kind == ek::CANCELLED).all(|e| e.reason == r::MASS_CANCEL));
    assert_eq!(depth(&e), (vec![(98, 1, 1)], vec![]));
}

#[test]
fn deposits_and_withdrawals_are_checked() {
    let mut e = engine();
    let ev = e.submit(&Command { kind: ck::WITHDRAW, ..deposit(10, ALICE, USD, 2_000_000) }).to_vec();
    assert_eq!(ev[0].reason, r::INSUFFICIENT_FUNDS);
    let ev = e.submit(&deposit(11, ALICE, 3, 5)).to_vec();
    assert_eq!(ev[0].reason, r::UNKNOWN_ASSET);
    let ev = e.submit(&deposit(12, ALICE, USD, 1 << 62)).to_vec();
    assert_eq!(ev[0].reason, r::INVALID_AMOUNT);
    let ev = e.submit(&Command { kind: ck::WITHDRAW, ..deposit(13, ALICE, USD, 1_000) }).to_vec();
    assert_eq!((ev[0].kind, ev[0].quantity), (ek::WITHDRAWN, 1_000));
}

#[test]
fn snapshot_round_trip_restores_the_same_state() {
    let mut e = engine_with(InstrumentSpec { maker_fee_bps: 2, taker_fee_bps: 5, ..spec() });
    e.submit(&order(10, BOB, SELL, 5, 101));
    e.submit(&order(11, ALICE, BUY, 3, 101));
    e.submit(&Command { time_in_force: GTD, expire_time: 10_000, ..order(12, ALICE, BUY, 2, 99) });
    e.submit(&Command { order_type: STOP_LIMIT, stop_price: 110, ..order(13, ALICE, BUY, 1, 111) });
    e.submit(&Command { order_type: STOP_MARKET, time_in_force: IOC, stop_price: 90, ..order(14, BOB, SELL, 1, 0) });
    let snapshot = e.snapshot();
    let hash = e.state_hash();
    let mut other = Engine::new();
    other.add_instrument(InstrumentSpec { maker_fee_bps: 2, taker_fee_bps: 5, ..spec() }).expect("valid");
    other.submit(&order(1, 99, BUY, 1, 1)); // some state of its own (rejected: no funds)
    other.restore(&snapshot).expect("a valid snapshot");
    assert_eq!(other.snapshot(), snapshot);
    assert_eq!(other.state_hash(), hash);
    assert_eq!(other.sequence(), 14);
    // Both continue identically, including the GTD expiry rebuilt from the snapshot.
    for c in [order(20, BOB, SELL, 10, 99), cmd(ck::TICK, 2_000), cancel(2_001, BOB, 10)] {
        assert_eq!(e.submit(&c).to_vec(), other.submit(&c).to_vec());
    }
    assert_eq!(e.snapshot(), other.snapshot());
}

#[test]
fn snapshot_restore_refuses_malformed_data_and_keeps_state() {
    let mut e = engine();
    e.submit(&order(10, ALICE, BUY, 5, 100));
    let good = e.snapshot();
    for bad in [&good[..good.len() - 8], &good[..40], &[0u8; 64][..], &good[..good.len() - 3]] {
        assert!(e.restore(bad).is_err());
    }
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0; 8]);
    assert!(e.restore(&trailing).is_err());
    // An order whose id is above the snapshot's sequence cannot come from a running shard.
    let mut forged = good.clone();
    let at = forged.len() - 8 * (16 + 2 + 1); // first field of the only order
    forged[at..at + 8].copy_from_slice(&1_000i64.to_le_bytes());
    assert!(e.restore(&forged).is_err());
    assert_eq!(e.snapshot(), good);
    let mut other = Engine::new();
    assert!(other.restore(&good).is_err()); // instruments differ
}

#[test]
fn state_hash_is_blake2b_128() {
    // hashlib.blake2b(b"", digest_size=16).hexdigest()
    assert_eq!(_native::snapshot::blake2b_128_hex(b""), "cae66941d9efbd404e4d88758ea67670");
}
