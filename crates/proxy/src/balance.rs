//! Backend health and choice, as plain state: the driver feeds in check and
//! connect results with the time, and asks which backend to try next.
//!
//! A backend is *up* until `unhealthy_after` active checks in a row fail, and
//! up again after `healthy_after` pass. Independently, `eject_after` failed
//! connects in a row (passive) eject it for `eject_for`; a passed active check
//! or a successful connect ends the ejection. When no backend is available the
//! choice falls back to all of them ("panic mode", as Envoy does) rather than
//! refuse every client because the checks may be wrong.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use crate::config::Balance;

/// Thresholds of one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    pub unhealthy_after: u32,
    pub healthy_after: u32,
    pub eject_after: u32,
    pub eject_for: Duration,
}

/// The health of one backend address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    up: bool,
    checks_passed: u32,
    checks_failed: u32,
    connects_failed: u32,
    ejected_until: Option<Instant>,
}

impl Default for Health {
    /// A new backend is up until a check or connect says otherwise.
    fn default() -> Self {
        Self {
            up: true,
            checks_passed: 0,
            checks_failed: 0,
            connects_failed: 0,
            ejected_until: None,
        }
    }
}

impl Health {
    /// Records an active check; returns the new `up` state when it changed.
    pub fn on_check(&mut self, passed: bool, policy: &HealthPolicy) -> Option<bool> {
        let was = self.up;
        if passed {
            self.checks_failed = 0;
            self.checks_passed = self.checks_passed.saturating_add(1);
            self.ejected_until = None;
            self.connects_failed = 0;
            if !self.up && self.checks_passed >= policy.healthy_after {
                self.up = true;
            }
        } else {
            self.checks_passed = 0;
            self.checks_failed = self.checks_failed.saturating_add(1);
            if self.up && self.checks_failed >= policy.unhealthy_after {
                self.up = false;
            }
        }
        (self.up != was).then_some(self.up)
    }

    /// Records a connect attempt for a client; returns true when it ejected
    /// the backend.
    pub fn on_connect(&mut self, ok: bool, now: Instant, policy: &HealthPolicy) -> bool {
        if ok {
            self.connects_failed = 0;
            self.ejected_until = None;
            return false;
        }
        self.connects_failed = self.connects_failed.saturating_add(1);
        if self.connects_failed >= policy.eject_after {
            let newly = !self.is_ejected(now);
            self.ejected_until = Some(now + policy.eject_for);
            return newly;
        }
        false
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|until| now < until)
    }

    /// Whether new connections should go here.
    pub fn is_available(&self, now: Instant) -> bool {
        self.up && !self.is_ejected(now)
    }
}

/// What the chooser needs to know about one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub available: bool,
    /// Connections open to it now.
    pub active: u32,
    /// At its per-backend connection limit.
    pub full: bool,
}

/// Picks the backend to try among `n`: an index, skipping those in `tried`
/// and those that are full. `candidate(i)` describes backend `i`. `cursor` is
/// the route's round-robin counter (the caller increments it per pick);
/// least-connections uses it to break ties so that equal backends share the
/// load.
pub fn pick(
    balance: Balance,
    n: usize,
    candidate: impl Fn(usize) -> Candidate,
    cursor: usize,
    tried: &[usize],
) -> Option<usize> {
    if n == 0 {
        return None;
    }
    // Prefer available backends; with none, any (panic mode).
    let any_available = (0..n).any(|i| {
        let c = candidate(i);
        c.available && !c.full
    });
    let usable = |i: usize| {
        let c = candidate(i);
        !c.full && !tried.contains(&i) && (c.available || !any_available)
    };
    let mut order = (0..n).map(|k| (cursor.wrapping_add(k)) % n);
    match balance {
        Balance::RoundRobin => order.find(|&i| usable(i)),
        Balance::LeastConnections => order
            .filter(|&i| usable(i))
            .min_by_key(|&i| candidate(i).active),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: HealthPolicy = HealthPolicy {
        unhealthy_after: 2,
        healthy_after: 2,
        eject_after: 3,
        eject_for: Duration::from_secs(10),
    };

    fn up(active: u32) -> Candidate {
        Candidate {
            available: true,
            active,
            full: false,
        }
    }

    #[test]
    fn checks_take_a_backend_down_and_up_after_thresholds() {
        let mut h = Health::default();
        assert!(h.is_up());
        assert_eq!(h.on_check(false, &POLICY), None);
        assert_eq!(h.on_check(false, &POLICY), Some(false));
        assert_eq!(h.on_check(false, &POLICY), None);
        assert_eq!(h.on_check(true, &POLICY), None);
        assert_eq!(
            h.on_check(false, &POLICY),
            None,
            "a failure resets the run of passes"
        );
        assert_eq!(h.on_check(true, &POLICY), None);
        assert_eq!(h.on_check(true, &POLICY), Some(true));
    }

    #[test]
    fn failed_connects_eject_until_the_time_passes() {
        let t0 = Instant::now();
        let mut h = Health::default();
        assert!(!h.on_connect(false, t0, &POLICY));
        assert!(!h.on_connect(false, t0, &POLICY));
        assert!(h.on_connect(false, t0, &POLICY));
        assert!(!h.is_available(t0 + Duration::from_secs(9)));
        assert!(h.is_available(t0 + Duration::from_secs(10)));
        // Still failing after the ejection: one more failure ejects again.
        assert!(h.on_connect(false, t0 + Duration::from_secs(11), &POLICY));
        assert!(!h.is_available(t0 + Duration::from_secs(12)));
    }

    #[test]
    fn a_passed_check_or_connect_ends_an_ejection() {
        let t0 = Instant::now();
        let mut h = Health::default();
        for _ in 0..3 {
            h.on_connect(false, t0, &POLICY);
        }
        assert!(!h.is_available(t0));
        h.on_check(true, &POLICY);
        assert!(h.is_available(t0));
        for _ in 0..3 {
            h.on_connect(false, t0, &POLICY);
        }
        h.on_connect(true, t0, &POLICY);
        assert!(h.is_available(t0));
    }

    #[test]
    fn round_robin_follows_the_cursor_and_skips_the_unavailable() {
        let mut c = [up(0), up(0), up(0)];
        let picks: Vec<_> = (0..6)
            .map(|k| pick(Balance::RoundRobin, c.len(), |i| c[i], k, &[]).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        c[1].available = false;
        assert_eq!(
            pick(Balance::RoundRobin, c.len(), |i| c[i], 1, &[]),
            Some(2)
        );
        assert_eq!(
            pick(Balance::RoundRobin, c.len(), |i| c[i], 1, &[2]),
            Some(0)
        );
        assert_eq!(
            pick(Balance::RoundRobin, c.len(), |i| c[i], 1, &[0, 2]),
            None,
            "available ones exist; do not fall back"
        );
    }

    #[test]
    fn least_connections_picks_the_idlest_and_rotates_ties() {
        let c = [up(5), up(1), up(1), up(7)];
        assert_eq!(
            pick(Balance::LeastConnections, c.len(), |i| c[i], 0, &[]),
            Some(1)
        );
        assert_eq!(
            pick(Balance::LeastConnections, c.len(), |i| c[i], 2, &[]),
            Some(2)
        );
        assert_eq!(
            pick(Balance::LeastConnections, c.len(), |i| c[i], 0, &[1, 2]),
            Some(0)
        );
    }

    #[test]
    fn with_none_available_all_are_tried() {
        let mut c = [up(0), up(0)];
        c[0].available = false;
        c[1].available = false;
        assert_eq!(
            pick(Balance::RoundRobin, c.len(), |i| c[i], 0, &[]),
            Some(0)
        );
        assert_eq!(
            pick(Balance::RoundRobin, c.len(), |i| c[i], 0, &[0]),
            Some(1)
        );
    }

    #[test]
    fn full_backends_are_never_picked() {
        let mut c = [up(0), up(0)];
        c[0].full = true;
        assert_eq!(
            pick(Balance::LeastConnections, c.len(), |i| c[i], 0, &[]),
            Some(1)
        );
        c[1].full = true;
        assert_eq!(pick(Balance::RoundRobin, c.len(), |i| c[i], 0, &[]), None);
        assert_eq!(pick(Balance::RoundRobin, 0, |_| up(0), 0, &[]), None);
    }
}
