//! [`BodyBudget`]: the memory webhook bodies may take while they are read, as a whole
//! ([`BODY_BUDGET_KIB`]) and per client address ([`BODY_BUDGET_PER_ADDRESS_KIB`]).
//!
//! A body takes the budget in [`BODY_SLICE_KIB`] slices as its bytes arrive, never for the
//! length it merely declares: a client that declares a megabyte and sends nothing holds
//! nothing, and one that sends most of a megabyte and stalls holds what it sent, until the
//! body deadline. When the address's share or the whole budget is spent the request is
//! answered 503 `busy` at once (no waiting), so a real webhook from another address never
//! queues behind stalled ones.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::per_address::{PerAddress, Share};

/// Memory all webhook bodies being read at once may take, in KiB (64 MiB).
pub const BODY_BUDGET_KIB: usize = 64 * 1024;
/// The most one client address may hold of [`BODY_BUDGET_KIB`], in KiB (16 MiB, a quarter
/// of the whole: 1 024 webhooks being read at once, each taking at least one slice).
pub const BODY_BUDGET_PER_ADDRESS_KIB: usize = 16 * 1024;
/// The budget is taken in slices of this many KiB as bytes arrive.
pub const BODY_SLICE_KIB: usize = 16;

/// The whole budget and each address's share of it.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    total: Arc<Semaphore>,
    per_address: Arc<PerAddress>,
}

impl Default for BodyBudget {
    fn default() -> Self {
        Self::new(BODY_BUDGET_KIB, BODY_BUDGET_PER_ADDRESS_KIB)
    }
}

/// The budget is spent (for this address or as a whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSpent;

impl BodyBudget {
    /// A budget of `total_kib`, at most `per_address_kib` of it per client address.
    pub fn new(total_kib: usize, per_address_kib: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total_kib)),
            per_address: PerAddress::new(per_address_kib),
        }
    }

    /// KiB left in the whole budget.
    pub fn available_kib(&self) -> usize {
        self.total.available_permits()
    }

    /// An empty lease for one body from `ip`; [`BodyLease::cover`] grows it.
    pub fn lease(&self, ip: IpAddr) -> BodyLease {
        BodyLease {
            budget: self.clone(),
            ip,
            share: None,
            permit: None,
        }
    }
}

/// What one body holds of the budget; given back on drop.
#[derive(Debug)]
pub struct BodyLease {
    budget: BodyBudget,
    ip: IpAddr,
    share: Option<Share>,
    permit: Option<OwnedSemaphorePermit>,
}

impl BodyLease {
    /// KiB held.
    pub fn kib(&self) -> usize {
        self.share.as_ref().map_or(0, Share::units)
    }

    /// Makes the lease cover `bytes` (taking whole slices), or says the budget is spent.
    pub fn cover(&mut self, bytes: usize) -> Result<(), BudgetSpent> {
        let held = self.kib();
        if held * 1024 >= bytes {
            return Ok(());
        }
        let needed = bytes.div_ceil(1024).div_ceil(BODY_SLICE_KIB) * BODY_SLICE_KIB - held;
        let permits = u32::try_from(needed).map_err(|_| BudgetSpent)?;
        let grown = match &mut self.share {
            Some(share) => share.try_grow(needed),
            None => match self.budget.per_address.try_take(self.ip, needed) {
                Some(share) => {
                    self.share = Some(share);
                    true
                }
                None => false,
            },
        };
        if !grown {
            return Err(BudgetSpent);
        }
        match Arc::clone(&self.budget.total).try_acquire_many_owned(permits) {
            Ok(permit) => {
                match &mut self.permit {
                    Some(held) => held.merge(permit),
                    None => self.permit = Some(permit),
                }
                Ok(())
            }
            Err(_) => {
                // Only what the whole budget also granted counts against the address.
                if let Some(share) = &mut self.share {
                    share.shrink(needed);
                }
                Err(BudgetSpent)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn bodies_take_slices_as_bytes_arrive_and_one_address_cannot_take_it_all() {
        let budget = BodyBudget::new(64, 32);
        let mut lease = budget.lease(ip("127.0.0.2"));
        assert_eq!(lease.kib(), 0, "nothing is taken before bytes arrive");
        lease.cover(1).expect("one slice");
        assert_eq!(lease.kib(), BODY_SLICE_KIB);
        lease.cover(20 * 1024).expect("two slices");
        assert_eq!(lease.kib(), 32);
        let mut second = budget.lease(ip("127.0.0.2"));
        assert_eq!(
            second.cover(1),
            Err(BudgetSpent),
            "the address's share is spent"
        );
        let mut other = budget.lease(ip("127.0.0.1"));
        other
            .cover(5 * 1024)
            .expect("another address still gets room");
        assert_eq!(budget.available_kib(), 64 - 32 - 16);
        drop(lease);
        second
            .cover(1)
            .expect("room again once the first body is done");
        drop((second, other));
        assert_eq!(budget.available_kib(), 64);
    }

    #[test]
    fn a_spent_total_refuses_without_keeping_the_address_share() {
        let budget = BodyBudget::new(16, 64);
        let mut first = budget.lease(ip("10.0.0.1"));
        first.cover(16 * 1024).expect("the whole budget");
        let mut second = budget.lease(ip("10.0.0.2"));
        assert_eq!(second.cover(1), Err(BudgetSpent));
        assert_eq!(second.kib(), 0);
        assert_eq!(budget.per_address.held_by(ip("10.0.0.2")), 0);
    }
}
