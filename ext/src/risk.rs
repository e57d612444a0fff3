//! Balances and holds: an order is accepted only if its account can pay for it.
//!
//! Layout
//! ------
//! Accounts get a dense slot on first use (an id -> slot map, direct-mapped
//! by account id with a hash-map spill, that is only ever looked up, never
//! iterated for output). Registered assets get a dense
//! index. Balances live in one flat vector of `[available, held]` pairs at
//! `slot * assets + index`, so the hot path reads two adjacent words.
//!
//! An account that holds nothing is not observable (snapshots skip it and
//! `balance` answers `(0, 0)` either way), so creating a slot earlier than the
//! reference creates its `Account` object changes nothing.
//!
//! Invariants
//! ----------
//! Every amount is in `[0, MAX_AMOUNT]` and so is each asset's supply (the sum
//! over accounts); trades move funds and never create them, so no sum of two
//! amounts the engine forms overflows `i64`.

use crate::index::DirectMap;
use crate::types::{AccountId, FEE_ACCOUNT, MAX_AMOUNT};

/// Buckets of the account id -> slot table (16 bytes each).
const ACCOUNT_BUCKETS: usize = 1 << 12;

/// Per-account, per-asset available and held amounts.
#[derive(Clone, Debug)]
pub struct Balances {
    /// One more than the highest registered asset id (at least 1), as in the snapshot.
    pub asset_slots: i64,
    /// Asset id -> dense index + 1 (0: not registered); `asset_slots` entries.
    index: Vec<u32>,
    /// Dense index -> asset id.
    assets: Vec<i64>,
    /// Account id -> slot: direct-mapped, as account ids are in practice
    /// small and dense (others go to the table's spill map).
    slots: DirectMap,
    /// Slot -> account id.
    ids: Vec<AccountId>,
    /// `[available, held]` at `slot * assets.len() + asset index`.
    cells: Vec<[i64; 2]>,
    /// Per asset index: the sum of every account's available and held.
    supply: Vec<i64>,
}

impl Default for Balances {
    fn default() -> Self {
        Balances::new()
    }
}

impl Balances {
    pub fn new() -> Balances {
        let mut balances = Balances {
            asset_slots: 1,
            index: vec![0],
            assets: Vec::new(),
            slots: DirectMap::with_buckets(ACCOUNT_BUCKETS),
            ids: Vec::new(),
            cells: Vec::new(),
            supply: Vec::new(),
        };
        balances.slot_or_create(FEE_ACCOUNT);
        balances
    }

    /// Register an asset (idempotent); returns its dense index.
    pub fn add_asset(&mut self, asset: i64) -> u32 {
        debug_assert!(asset >= 1);
        if asset >= self.asset_slots {
            self.asset_slots = asset + 1;
            self.index.resize(self.asset_slots as usize, 0);
        }
        let existing = self.index[asset as usize];
        if existing != 0 {
            return existing - 1;
        }
        let old = self.assets.len();
        let new = old + 1;
        let mut cells = vec![[0i64; 2]; self.ids.len() * new];
        for slot in 0..self.ids.len() {
            cells[slot * new..slot * new + old].copy_from_slice(&self.cells[slot * old..slot * old + old]);
        }
        self.cells = cells;
        self.assets.push(asset);
        self.supply.push(0);
        self.index[asset as usize] = new as u32;
        old as u32
    }

    /// The dense index of a registered asset id.
    #[inline]
    pub fn asset_index(&self, asset: i64) -> Option<u32> {
        if asset < 0 || asset >= self.asset_slots {
            return None;
        }
        match self.index[asset as usize] {
            0 => None,
            i => Some(i - 1),
        }
    }

    #[inline(always)]
    pub fn asset_count(&self) -> usize {
        self.assets.len()
    }

    /// The slot of an account that exists.
    #[inline]
    pub fn slot(&self, account: AccountId) -> Option<u32> {
        self.slots.get(account.0)
    }

    /// The slot of an account, creating it (with nothing in it) if needed.
    #[inline]
    pub fn slot_or_create(&mut self, account: AccountId) -> u32 {
        if let Some(slot) = self.slots.get(account.0) {
            return slot;
        }
        let slot = self.ids.len() as u32;
        self.ids.push(account);
        self.cells.resize(self.cells.len() + self.assets.len(), [0, 0]);
        self.slots.insert_new(account.0, slot);
        slot
    }

    #[inline(always)]
    fn cell(&self, slot: u32, asset: u32) -> &[i64; 2] {
        &self.cells[slot as usize * self.assets.len() + asset as usize]
    }

    #[inline(always)]
    fn cell_mut(&mut self, slot: u32, asset: u32) -> &mut [i64; 2] {
        let n = self.assets.len();
        &mut self.cells[slot as usize * n + asset as usize]
    }

    #[inline(always)]
    pub fn available_at(&self, slot: u32, asset: u32) -> i64 {
        self.cell(slot, asset)[0]
    }

    /// Available amount of an asset index for an account id (0 if unknown).
    #[inline]
    pub fn available(&self, account: AccountId, asset: u32) -> i64 {
        match self.slot(account) {
            Some(slot) => self.available_at(slot, asset),
            None => 0,
        }
    }

    /// Reserve `amount` (the caller has checked it is available).
    #[inline(always)]
    pub fn hold(&mut self, slot: u32, asset: u32, amount: i64) {
        let cell = self.cell_mut(slot, asset);
        cell[0] -= amount;
        cell[1] += amount;
    }

    /// Return `amount` of a hold to available.
    #[inline(always)]
    pub fn release(&mut self, slot: u32, asset: u32, amount: i64) {
        let cell = self.cell_mut(slot, asset);
        cell[1] -= amount;
        cell[0] += amount;
    }

    /// Would a deposit keep the asset's supply within `MAX_AMOUNT`?
    #[inline]
    pub fn can_deposit(&self, asset: u32, amount: i64) -> bool {
        (self.supply[asset as usize] as i128 + amount as i128) <= MAX_AMOUNT as i128
    }

    pub fn deposit(&mut self, account: AccountId, asset: u32, amount: i64) {
        let slot = self.slot_or_create(account);
        self.cell_mut(slot, asset)[0] += amount;
        self.supply[asset as usize] += amount;
    }

    /// Withdraw from available (the caller has checked it is there).
    pub fn withdraw(&mut self, slot: u32, asset: u32, amount: i64) {
        self.cell_mut(slot, asset)[0] -= amount;
        self.supply[asset as usize] -= amount;
    }

    /// Move one trade's funds (`core.risk.Balances.settle`).
    ///
    /// The buyer's hold gives up `paid_from_hold` (the part reserved for this
    /// quantity); what exceeds the notional returns to available. The buyer
    /// receives base less its fee, the seller quote less its fee; the fees go
    /// to the fee account.
    #[allow(clippy::too_many_arguments, reason = "one trade's settlement has this many inputs")]
    #[inline(always)]
    pub fn settle(
        &mut self,
        buyer: u32,
        seller: u32,
        base: u32,
        quote: u32,
        base_amount: i64,
        notional: i64,
        paid_from_hold: i64,
        buyer_fee: i64,
        seller_fee: i64,
    ) {
        {
            let c = self.cell_mut(buyer, quote);
            c[1] -= paid_from_hold;
            c[0] += paid_from_hold - notional;
        }
        self.cell_mut(buyer, base)[0] += base_amount - buyer_fee;
        self.cell_mut(seller, base)[1] -= base_amount;
        self.cell_mut(seller, quote)[0] += notional - seller_fee;
        if buyer_fee != 0 || seller_fee != 0 {
            // The fee account is slot 0 (created with the balances).
            self.cell_mut(0, base)[0] += buyer_fee;
            self.cell_mut(0, quote)[0] += seller_fee;
        }
    }

    /// `(available, held)` of an asset id for an account id, as `core` answers it.
    pub fn balance(&self, account: AccountId, asset: i64) -> (i64, i64) {
        match (self.slot(account), self.asset_index(asset)) {
            (Some(slot), Some(i)) => {
                let c = self.cell(slot, i);
                (c[0], c[1])
            }
            _ => (0, 0),
        }
    }

    /// Every account holding something, ascending by id, with its
    /// `(available, held)` per asset id `0..asset_slots`.
    pub fn nonempty_accounts(&self) -> Vec<(AccountId, Vec<i64>, Vec<i64>)> {
        let n = self.assets.len();
        let mut out: Vec<(AccountId, u32)> = (0..self.ids.len() as u32)
            .filter(|&slot| {
                let s = slot as usize * n;
                self.cells[s..s + n].iter().any(|c| c[0] != 0 || c[1] != 0)
            })
            .map(|slot| (self.ids[slot as usize], slot))
            .collect();
        out.sort_unstable();
        out.into_iter()
            .map(|(id, slot)| {
                let mut available = vec![0; self.asset_slots as usize];
                let mut held = vec![0; self.asset_slots as usize];
                for (i, &asset) in self.assets.iter().enumerate() {
                    let c = self.cell(slot, i as u32);
                    available[asset as usize] = c[0];
                    held[asset as usize] = c[1];
                }
                (id, available, held)
            })
            .collect()
    }

    /// Forget every account (keeping the registered assets).
    pub fn clear_accounts(&mut self) {
        self.slots.clear();
        self.ids.clear();
        self.cells.clear();
        self.supply.iter_mut().for_each(|s| *s = 0);
        self.slot_or_create(FEE_ACCOUNT);
    }

    /// Set an account's balances (restore); amounts indexed by asset id.
    pub fn set_account(&mut self, account: AccountId, available: &[i64], held: &[i64]) {
        let slot = self.slot_or_create(account);
        for i in 0..self.assets.len() {
            let asset = self.assets[i] as usize;
            let (a, h) = (available[asset], held[asset]);
            let c = self.cell_mut(slot, i as u32);
            c[0] = a;
            c[1] = h;
            self.supply[i] += a + h;
        }
    }

    /// Iterate registered assets as `(index, id)`.
    pub fn assets(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.assets.iter().enumerate().map(|(i, &a)| (i as u32, a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_hold_release_settle_conserve() {
        let mut b = Balances::new();
        let base = b.add_asset(1);
        let quote = b.add_asset(2);
        b.deposit(AccountId(7), quote, 1_000);
        b.deposit(AccountId(8), base, 50);
        let buyer = b.slot(AccountId(7)).unwrap();
        let seller = b.slot(AccountId(8)).unwrap();
        b.hold(buyer, quote, 600);
        b.hold(seller, base, 10);
        // 10 base for 500 quote, paid from a 600 hold; fees 1 base and 5 quote.
        b.settle(buyer, seller, base, quote, 10, 500, 600, 1, 5);
        assert_eq!(b.balance(AccountId(7), 2), (500, 0));
        assert_eq!(b.balance(AccountId(7), 1), (9, 0));
        assert_eq!(b.balance(AccountId(8), 2), (495, 0));
        assert_eq!(b.balance(AccountId(8), 1), (40, 0));
        assert_eq!(b.balance(FEE_ACCOUNT, 1), (1, 0));
        assert_eq!(b.balance(FEE_ACCOUNT, 2), (5, 0));
        let accounts = b.nonempty_accounts();
        assert_eq!(accounts.iter().map(|a| a.0 .0).collect::<Vec<_>>(), vec![0, 7, 8]);
    }

    #[test]
    fn risk_add_asset_keeps_balances() {
        let mut b = Balances::new();
        let q = b.add_asset(5);
        b.deposit(AccountId(3), q, 42);
        let other = b.add_asset(2);
        assert_eq!(b.asset_slots, 6);
        assert_eq!(b.balance(AccountId(3), 5), (42, 0));
        assert_eq!(b.balance(AccountId(3), 2), (0, 0));
        assert_eq!(b.add_asset(5), q);
        assert_ne!(other, q);
        assert!(b.can_deposit(q, MAX_AMOUNT - 42));
        assert!(!b.can_deposit(q, MAX_AMOUNT - 41));
    }
}
