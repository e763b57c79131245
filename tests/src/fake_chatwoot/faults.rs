//! Fault injection: fail the next N requests, fail a seeded share of them, answer late, or
//! apply a request and drop the connection without answering.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::routes::Endpoint;

/// What happens to a request picked for a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status without applying the request (500 with Chatwoot's error JSON, 429
    /// with Rack::Attack's plain `Retry later`, no `Retry-After`).
    Status(u16),
    /// Apply the request, then answer only after this delay (a client with a shorter timeout
    /// sees an ambiguous timeout).
    Delay(Duration),
    /// Apply the request, then close the connection without answering.
    DropAfterApply,
    /// Hold the request and apply it only after this delay, whether or not the client is
    /// still waiting (a slow Chatwoot behind a client that timed out: the request lands after
    /// the client gave up), then answer.
    ApplyAfter(Duration),
}

/// A share of requests that fail, drawn from a seeded RNG so a run can be repeated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRates {
    /// Seed of the RNG.
    pub seed: u64,
    /// Share answered 500 (0.0–1.0).
    pub server_error: f64,
    /// Share answered 429.
    pub rate_limited: f64,
    /// Share applied and answered after `slow_delay`.
    pub slow: f64,
    /// The delay of slow answers.
    pub slow_delay: Duration,
    /// Only requests to this endpoint, or all when `None`.
    pub endpoint: Option<Endpoint>,
}

impl FaultRates {
    /// 20 % 500, 5 % 429, 5 % slow (2 s), on every endpoint.
    pub fn chaos(seed: u64) -> Self {
        Self {
            seed,
            server_error: 0.20,
            rate_limited: 0.05,
            slow: 0.05,
            slow_delay: Duration::from_secs(2),
            endpoint: None,
        }
    }
}

#[derive(Debug)]
struct NextFailures {
    endpoint: Option<Endpoint>,
    remaining: u32,
    fault: Fault,
}

/// The fault plan of one fake.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    next: Vec<NextFailures>,
    rates: Option<(FaultRates, StdRng)>,
    pub(crate) latency: Duration,
}

impl Faults {
    pub(crate) fn fail_next(&mut self, endpoint: Option<Endpoint>, count: u32, fault: Fault) {
        if count > 0 {
            self.next.push(NextFailures {
                endpoint,
                remaining: count,
                fault,
            });
        }
    }

    pub(crate) fn set_rates(&mut self, rates: Option<FaultRates>) {
        self.rates = rates.map(|r| (r, StdRng::seed_from_u64(r.seed)));
    }

    /// Queued failures not yet picked.
    pub(crate) fn queued(&self) -> u32 {
        self.next.iter().map(|r| r.remaining).sum()
    }

    pub(crate) fn clear(&mut self) {
        self.next.clear();
        self.rates = None;
        self.latency = Duration::ZERO;
    }

    /// The fault for this request, if any: queued failures first (oldest rule first), then
    /// the rates.
    pub(crate) fn pick(&mut self, endpoint: Endpoint) -> Option<Fault> {
        if let Some(rule) = self
            .next
            .iter_mut()
            .find(|r| r.endpoint.is_none_or(|e| e == endpoint))
        {
            rule.remaining -= 1;
            let fault = rule.fault;
            self.next.retain(|r| r.remaining > 0);
            return Some(fault);
        }
        let (rates, rng) = self.rates.as_mut()?;
        if rates.endpoint.is_some_and(|e| e != endpoint) {
            return None;
        }
        let roll: f64 = rng.random();
        if roll < rates.server_error {
            Some(Fault::Status(500))
        } else if roll < rates.server_error + rates.rate_limited {
            Some(Fault::Status(429))
        } else if roll < rates.server_error + rates.rate_limited + rates.slow {
            Some(Fault::Delay(rates.slow_delay))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_failures_are_consumed_in_order_and_per_endpoint() {
        let mut faults = Faults::default();
        faults.fail_next(Some(Endpoint::CreateMessage), 2, Fault::Status(500));
        assert_eq!(faults.pick(Endpoint::ListAgents), None);
        assert_eq!(
            faults.pick(Endpoint::CreateMessage),
            Some(Fault::Status(500))
        );
        assert_eq!(
            faults.pick(Endpoint::CreateMessage),
            Some(Fault::Status(500))
        );
        assert_eq!(faults.pick(Endpoint::CreateMessage), None);
    }

    #[test]
    fn rates_are_reproducible_for_a_seed() {
        let draw = |seed| {
            let mut faults = Faults::default();
            faults.set_rates(Some(FaultRates::chaos(seed)));
            (0..200)
                .map(|_| faults.pick(Endpoint::CreateMessage))
                .collect::<Vec<_>>()
        };
        let run = draw(7);
        assert_eq!(run, draw(7));
        let errors = run
            .iter()
            .filter(|f| **f == Some(Fault::Status(500)))
            .count();
        assert!(
            (20..=60).contains(&errors),
            "about 20 % of 200 should be 500s, got {errors}"
        );
    }
}
