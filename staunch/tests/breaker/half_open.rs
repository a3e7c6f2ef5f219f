//! Half-open settings: the maximum wait (resilience4j's `maxWaitDurationInHalfOpenState`) and
//! ratio decisions (failsafe's `withSuccessThreshold(successes, probes)`).

use std::time::Duration;

use staunch::backoff::{Backoff, Jitter};
use staunch::breaker::{BreakerConfig, Reason, State};

use crate::support::{MS, Rig, SEC, tripped};

// ---- maximum wait ---------------------------------------------------------------------------

#[test]
fn a_breaker_still_half_open_after_the_maximum_wait_reopens() {
    let rig = tripped(
        BreakerConfig::consecutive_failures(1)
            .with_probe_lease(60 * SEC)
            .with_half_open_max_wait(5 * SEC),
    );
    let stuck = rig.breaker.try_acquire().unwrap(); // half-open at 1 s
    rig.clock.advance(4 * SEC + 900 * MS);
    let rejected = rig.breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.state(), State::HalfOpen);
    assert_eq!(
        rejected.retry_after(),
        Some(100 * MS + SEC),
        "the wait ends first (not the lease): then an open period of 1 s"
    );
    rig.clock.advance(100 * MS); // 6 s: half-open for 5 s
    let rejected = rig.breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.state(), State::Open);
    assert_eq!(rejected.retry_after(), Some(SEC));
    assert_eq!(
        rig.transitions().last(),
        Some(&(State::HalfOpen, State::Open, Reason::HalfOpenTimedOut))
    );
    stuck.success(); // stale
    assert_eq!(rig.state(), State::Open);
    rig.clock.advance(SEC);
    rig.ok();
    assert_eq!(rig.state(), State::Closed);
}

#[test]
fn a_probe_outcome_after_the_maximum_wait_reopens_instead_of_counting() {
    let rig = tripped(
        BreakerConfig::consecutive_failures(1)
            .with_half_open_probes(2)
            .with_successes_to_close(2)
            .with_half_open_max_wait(5 * SEC),
    );
    let a = rig.breaker.try_acquire().unwrap();
    let b = rig.breaker.try_acquire().unwrap();
    a.success();
    rig.clock.advance(5 * SEC);
    b.success(); // would close, but the wait has ended
    assert_eq!(rig.state(), State::Open);
    assert_eq!(
        rig.transitions().last(),
        Some(&(State::HalfOpen, State::Open, Reason::HalfOpenTimedOut))
    );
}

#[test]
fn the_maximum_wait_counts_from_turning_half_open_across_lease_reclaims() {
    let rig = tripped(
        BreakerConfig::consecutive_failures(1)
            .with_probe_lease(2 * SEC)
            .with_half_open_max_wait(5 * SEC),
    );
    let _first = rig.breaker.try_acquire().unwrap();
    rig.clock.advance(2 * SEC);
    let _second = rig
        .breaker
        .try_acquire()
        .expect("the lease reclaims the slot");
    let rejected = rig.breaker.try_acquire().unwrap_err();
    assert_eq!(
        rejected.retry_after(),
        Some(2 * SEC),
        "the lease ends (at 5 s) before the wait (at 6 s)"
    );
    rig.clock.advance(2 * SEC);
    let _third = rig.breaker.try_acquire().expect("reclaimed again");
    rig.clock.advance(SEC); // 5 s after turning half-open, 1 s after the last reclaim
    assert_eq!(rig.breaker.try_acquire().unwrap_err().state(), State::Open);
}

#[test]
fn a_half_open_timeout_grows_the_open_duration_like_a_probe_failure() {
    let backoff = Backoff::exponential(SEC)
        .with_max_delay(8 * SEC)
        .with_jitter(Jitter::None);
    let rig = Rig::new(
        BreakerConfig::consecutive_failures(1)
            .with_open_backoff(backoff)
            .with_half_open_max_wait(3 * SEC),
    );
    rig.fail(); // open for 1 s
    rig.clock.advance(SEC);
    let _stuck = rig.breaker.try_acquire().unwrap();
    rig.clock.advance(3 * SEC);
    let rejected = rig.breaker.try_acquire().unwrap_err();
    assert_eq!(
        rejected.retry_after(),
        Some(2 * SEC),
        "the second trip's delay"
    );
}

#[test]
fn without_a_maximum_wait_half_open_waits_for_its_probes() {
    let rig = tripped(BreakerConfig::consecutive_failures(1).with_probe_lease(60 * SEC));
    let probe = rig.breaker.try_acquire().unwrap();
    rig.clock.advance(Duration::from_secs(59));
    assert_eq!(
        rig.breaker.try_acquire().unwrap_err().state(),
        State::HalfOpen
    );
    probe.success();
    assert_eq!(rig.state(), State::Closed);
}

// ---- ratio decisions ------------------------------------------------------------------------

fn three_of_five() -> Rig {
    tripped(
        BreakerConfig::consecutive_failures(1)
            .with_half_open_probes(5)
            .with_successes_to_close_out_of(3, 5),
    )
}

#[test]
fn ratio_closes_at_the_successes_out_of_the_probes() {
    let rig = three_of_five();
    rig.run("FSFS");
    let s = rig.breaker.snapshot();
    assert_eq!(
        (s.state, s.probe_successes, s.probe_failures),
        (State::HalfOpen, 2, 2)
    );
    rig.ok();
    assert_eq!(rig.state(), State::Closed);
    assert_eq!(
        rig.transitions().last(),
        Some(&(State::HalfOpen, State::Closed, Reason::ProbesSucceeded))
    );
}

#[test]
fn ratio_reopens_as_soon_as_closing_has_become_impossible() {
    let rig = three_of_five();
    let in_flight: Vec<_> = (0..2).map(|_| rig.breaker.try_acquire().unwrap()).collect();
    rig.run("FF");
    assert_eq!(
        rig.state(),
        State::HalfOpen,
        "2 failures: 3 successes still possible"
    );
    rig.fail();
    assert_eq!(
        rig.state(),
        State::Open,
        "3 failures of 5: without waiting for the others"
    );
    assert_eq!(
        rig.transitions().last(),
        Some(&(State::HalfOpen, State::Open, Reason::ProbeFailed))
    );
    for probe in in_flight {
        probe.success(); // stale
    }
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn ratio_closes_early_once_the_successes_are_in() {
    let rig = three_of_five();
    let in_flight: Vec<_> = (0..2).map(|_| rig.breaker.try_acquire().unwrap()).collect();
    rig.run("SSS");
    assert_eq!(
        rig.state(),
        State::Closed,
        "3 successes: the other 2 cannot change it"
    );
    for probe in in_flight {
        probe.failure(); // stale
    }
    assert_eq!(rig.state(), State::Closed);
}

#[test]
fn ignored_and_dropped_probes_are_no_outcome_for_the_ratio() {
    let rig = three_of_five();
    rig.run("FFII");
    drop(rig.breaker.try_acquire().unwrap());
    assert_eq!(rig.breaker.snapshot().probe_failures, 2);
    rig.run("SSS");
    assert_eq!(rig.state(), State::Closed);
}

#[test]
fn a_lease_reclaim_starts_the_ratio_again() {
    let rig = tripped(
        BreakerConfig::consecutive_failures(1)
            .with_half_open_probes(3)
            .with_successes_to_close_out_of(2, 3)
            .with_probe_lease(2 * SEC),
    );
    rig.fail(); // 1 failure of the 1 allowed
    let _held: Vec<_> = (0..3).map(|_| rig.breaker.try_acquire().unwrap()).collect();
    rig.clock.advance(2 * SEC);
    let fresh = rig.breaker.try_acquire().expect("reclaimed");
    fresh.failure(); // the new generation's first failure: tolerated
    assert_eq!(rig.state(), State::HalfOpen);
    assert_eq!(rig.breaker.snapshot().probe_failures, 1);
}

#[test]
fn successes_to_close_alone_reopens_on_the_first_failure() {
    let rig = tripped(
        BreakerConfig::consecutive_failures(1)
            .with_half_open_probes(5)
            .with_successes_to_close_out_of(3, 5)
            .with_successes_to_close(3), // replaces the ratio: 3 of 3
    );
    rig.run("SS");
    rig.fail();
    assert_eq!(rig.state(), State::Open);
}
