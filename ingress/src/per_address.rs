//! [`PerAddress`]: how much of a limited resource each client address holds, so that one
//! address cannot take all of it (connections, body memory).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts units held per client address, at most `limit` each.
#[derive(Debug)]
pub struct PerAddress {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    /// A counter allowing `limit` units per address.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// The most one address may hold.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// What `ip` holds now.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&ip).copied().unwrap_or(0)
    }

    /// Takes `units` for `ip`, or `None` when that would pass the limit.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr, units: usize) -> Option<Share> {
        let mut share = Share {
            owner: Arc::clone(self),
            ip,
            units: 0,
        };
        share.try_grow(units).then_some(share)
    }

    fn add(&self, ip: IpAddr, units: usize) -> bool {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = held.entry(ip).or_insert(0);
        match entry.checked_add(units) {
            Some(total) if total <= self.limit => {
                *entry = total;
                true
            }
            _ => {
                if *entry == 0 {
                    held.remove(&ip);
                }
                false
            }
        }
    }

    fn give_back(&self, ip: IpAddr, units: usize) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = held.get_mut(&ip) {
            *entry = entry.saturating_sub(units);
            if *entry == 0 {
                held.remove(&ip);
            }
        }
    }
}

/// Units one holder took for its address; given back on drop.
#[derive(Debug)]
pub struct Share {
    owner: Arc<PerAddress>,
    ip: IpAddr,
    units: usize,
}

impl Share {
    /// Takes `units` more; false (nothing taken) when that would pass the address's limit.
    pub fn try_grow(&mut self, units: usize) -> bool {
        if units == 0 {
            return true;
        }
        let grown = self.owner.add(self.ip, units);
        if grown {
            self.units += units;
        }
        grown
    }

    /// Gives `units` back early (at most what the share holds).
    pub fn shrink(&mut self, units: usize) {
        let units = units.min(self.units);
        if units > 0 {
            self.owner.give_back(self.ip, units);
            self.units -= units;
        }
    }

    /// The units this share holds.
    pub fn units(&self) -> usize {
        self.units
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if self.units > 0 {
            self.owner.give_back(self.ip, self.units);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_is_capped_and_others_are_not_affected() {
        let counter = PerAddress::new(3);
        let a: IpAddr = "127.0.0.2".parse().expect("an address");
        let b: IpAddr = "127.0.0.1".parse().expect("an address");
        let mut first = counter.try_take(a, 2).expect("within the limit");
        assert!(!first.try_grow(2), "past the limit");
        assert!(first.try_grow(1));
        assert!(counter.try_take(a, 1).is_none(), "a holds its whole limit");
        let other = counter.try_take(b, 3).expect("b has a limit of its own");
        assert_eq!(counter.held_by(a), 3);
        drop(first);
        assert_eq!(counter.held_by(a), 0, "given back on drop");
        assert_eq!(other.units(), 3);
        drop(other);
        assert!(counter.held.lock().expect("not poisoned").is_empty());
    }
}
