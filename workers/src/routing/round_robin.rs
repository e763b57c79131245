//! `RoundRobin`: which agent got the last tie in each pool (a team, or "any team" for safety
//! fallbacks), so agents with equal workload take turns.
//!
//! The cursor remembers the last agent *id* rather than a position, so agents joining,
//! leaving or going offline never make the rotation skip or repeat someone: the next pick is
//! the smallest tied id greater than the last one, wrapping around. The state is serde so the
//! wiring can keep it in Redis (one small JSON object) and share it between assigner replicas;
//! two replicas racing on the same pool at worst give one agent two conversations in a row.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Pool key used when a safety conversation falls back to agents of any team.
pub const ANY_TEAM_POOL: &str = "any";

/// Round-robin cursors, one per pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundRobin {
    /// Pool key → id of the agent picked last.
    #[serde(default)]
    last: BTreeMap<String, i64>,
}

impl RoundRobin {
    /// No history: the first pick in each pool is the smallest id.
    pub fn new() -> Self {
        Self::default()
    }

    /// The pool key of a team (its Chatwoot id).
    pub fn team_pool(team_id: i64) -> String {
        format!("team:{team_id}")
    }

    /// The agent picked last in a pool, if any.
    pub fn last(&self, pool: &str) -> Option<i64> {
        self.last.get(pool).copied()
    }

    /// Picks the next of `tied` (any order, duplicates ignored) after the pool's last pick and
    /// remembers it; `None` when `tied` is empty.
    pub fn next(&mut self, pool: &str, tied: &[i64]) -> Option<i64> {
        let smallest = tied.iter().copied().min()?;
        let pick = match self.last(pool) {
            Some(last) => tied
                .iter()
                .copied()
                .filter(|id| *id > last)
                .min()
                .unwrap_or(smallest),
            None => smallest,
        };
        self.last.insert(pool.to_owned(), pick);
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_rotate_through_tied_agents_and_wrap_around() {
        let mut rr = RoundRobin::new();
        let picks: Vec<_> = (0..4)
            .map(|_| rr.next("team:1", &[30, 10, 20]).expect("non-empty"))
            .collect();
        assert_eq!(picks, [10, 20, 30, 10]);
    }

    #[test]
    fn an_agent_leaving_the_tie_does_not_reset_the_rotation() {
        let mut rr = RoundRobin::new();
        assert_eq!(rr.next("team:1", &[10, 20, 30]), Some(10));
        assert_eq!(rr.next("team:1", &[10, 30]), Some(30));
        assert_eq!(rr.next("team:1", &[10, 20, 30]), Some(10));
    }

    #[test]
    fn pools_rotate_independently_and_survive_a_json_round_trip() {
        let mut rr = RoundRobin::new();
        rr.next("team:1", &[1, 2]);
        rr.next("team:2", &[5, 6]);
        rr.next("team:2", &[5, 6]);
        let json = serde_json::to_string(&rr).expect("serialises");
        let mut back: RoundRobin = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, rr);
        assert_eq!(back.next("team:1", &[1, 2]), Some(2));
        assert_eq!(back.next("team:2", &[5, 6]), Some(5));
        assert_eq!(rr.next("team:3", &[]), None);
    }
}
