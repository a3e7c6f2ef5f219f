//! Scenario tests of the circuit breaker, on a manual clock or paused tokio time.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use staunch::backoff::{Backoff, Jitter};
use staunch::breaker::{BreakerConfig, CircuitBreaker, CircuitOpen, Reason, State};
use staunch::classify::Class;
use support::{MS, Rig, SEC, tripped};

// ---- consecutive failures -------------------------------------------------------------------

#[test]
fn consecutive_means_consecutive_a_success_resets_the_count() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(3));
    rig.run("FFSFF");
    assert_eq!(
        rig.state(),
        State::Closed,
        "a success in between resets the count"
    );
    assert_eq!(rig.breaker.snapshot().consecutive_failures, 2);
    rig.fail();
    assert_eq!(
        rig.state(),
        State::Open,
        "the third failure in a row trips (>=)"
    );
}

#[test]
fn ignored_outcomes_neither_reset_nor_count() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(2));
    rig.run("FIIF");
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn open_rejects_at_once_and_says_when_the_next_probe_is_admitted() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(1).with_open_duration(10 * SEC));
    let tripped_at = rig.clock.now();
    rig.fail();
    rig.clock.advance(3 * SEC);
    let open = rig.breaker.try_acquire().unwrap_err();
    assert_eq!(open.state(), State::Open);
    assert_eq!(open.retry_after(), Some(7 * SEC));
    assert_eq!(rig.clock.now() + 7 * SEC, tripped_at + 10 * SEC);
    let mut called = false;
    let err = rig
        .breaker
        .call_blocking(|| {
            called = true;
            Ok::<_, ()>(())
        })
        .unwrap_err();
    assert!(
        err.is_open() && !called,
        "rejected without running the call"
    );
    assert_eq!(
        rig.breaker.snapshot().next_probe_at,
        Some(tripped_at + 10 * SEC)
    );
}

// ---- count window ---------------------------------------------------------------------------

#[test]
fn count_window_opens_exactly_on_the_call_that_reaches_the_threshold_once_the_minimum_is_met() {
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.5, 10).with_minimum_calls(5));
    // 3 failures of 4 calls is 75% but below the minimum of 5 calls.
    rig.run("FFSF");
    assert_eq!(rig.state(), State::Closed);
    // The fifth call meets the minimum; 3/5 = 60% >= 50%: it trips on this very call, a success.
    rig.ok();
    assert_eq!(rig.state(), State::Open);
    assert_eq!(
        rig.transitions(),
        [(State::Closed, State::Open, Reason::Tripped)]
    );
}

#[test]
fn count_window_compares_with_at_least_and_not_above() {
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.5, 4));
    rig.run("SFS");
    assert_eq!(rig.state(), State::Closed);
    rig.fail(); // 2/4 = 50%
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn count_window_slides_old_outcomes_out() {
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.5, 4));
    // Window after each call: [F S S S] [S S S S] [S S S S] [S S S F] — a cumulative count
    // (3 of 8) or a window that never forgets would behave differently below.
    rig.run("FSSSSSF");
    assert_eq!(rig.state(), State::Closed);
    assert_eq!(rig.breaker.snapshot().failures, 1);
    rig.fail(); // [S S F F] = 50%
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn window_starts_empty_after_the_breaker_closes() {
    let rig = Rig::new(
        BreakerConfig::failure_rate_count(0.5, 4)
            .with_minimum_calls(2)
            .with_open_duration(SEC),
    );
    rig.run("FF");
    assert_eq!(rig.state(), State::Open);
    rig.clock.advance(SEC);
    rig.ok(); // probe closes
    assert_eq!(rig.state(), State::Closed);
    assert_eq!(rig.breaker.snapshot().calls, 0);
    rig.run("S");
    rig.run("F"); // 1/2 with a fresh window
    assert_eq!(rig.state(), State::Open);
}

/// Untimed successes of a window that no run of successes can trip skip the window lock (see
/// `pending.rs`); these pin that a single thread still sees every count and decision.
#[test]
fn count_window_decisions_do_not_depend_on_successes_skipping_the_lock() {
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.5, 10).with_minimum_calls(4));
    // [F S S S S S S S S S]: 1/10; then each failure evicts the oldest call.
    rig.run("FSSS");
    rig.run(&"S".repeat(6));
    rig.run("FFFF"); // [S*6 F F F F]: 4/10
    assert_eq!(rig.state(), State::Closed);
    rig.fail(); // [S*5 F F F F F]: 5/10
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn count_window_successes_beyond_a_whole_window_leave_it_full_of_successes() {
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.5, 4).with_minimum_calls(2));
    rig.run("SSF");
    rig.run(&"S".repeat(9));
    rig.run("F"); // [S S S F]: 1/4
    assert_eq!(rig.state(), State::Closed);
    rig.fail(); // [S S F F]
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn a_snapshot_counts_successes_that_skipped_the_lock() {
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.5, 100).with_minimum_calls(4));
    rig.run("FSSS");
    rig.run(&"S".repeat(50));
    let s = rig.breaker.snapshot();
    assert_eq!((s.calls, s.failures), (54, 1));
    rig.run("S");
    assert_eq!(rig.breaker.snapshot().calls, 55);
}

#[test]
fn a_success_admitted_before_a_trip_is_not_counted_after_it() {
    let rig = Rig::new(
        BreakerConfig::failure_rate_count(0.5, 4)
            .with_minimum_calls(2)
            .with_open_duration(SEC)
            .with_successes_to_close(1),
    );
    rig.run("SS"); // no run of successes can trip this window
    let late = rig.breaker.try_acquire().unwrap();
    rig.run("FF"); // [S S F F]: 50%
    assert_eq!(rig.state(), State::Open);
    late.success(); // stale
    rig.clock.advance(SEC);
    rig.ok(); // the probe closes
    assert_eq!(rig.state(), State::Closed);
    rig.fail();
    let s = rig.breaker.snapshot();
    assert_eq!((s.calls, s.failures), (1, 1), "the late success is nowhere");
}

#[test]
fn forced_closed_counts_successes_without_the_lock_and_a_reset_forgets_them() {
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.5, 10).with_minimum_calls(2));
    rig.breaker.force_closed();
    rig.run("FFF");
    rig.run(&"S".repeat(5));
    let s = rig.breaker.snapshot();
    assert_eq!((s.state, s.calls, s.failures), (State::ForcedClosed, 8, 3));
    let late = rig.breaker.try_acquire().unwrap();
    rig.breaker.reset();
    late.success(); // admitted while forced closed: stale
    assert_eq!(rig.breaker.snapshot().calls, 0);
}

// ---- time window ----------------------------------------------------------------------------

#[test]
fn time_window_successes_skipping_the_lock_land_in_their_bucket() {
    let rig = Rig::new(
        BreakerConfig::failure_rate_time(0.5, 10 * SEC)
            .with_buckets(10)
            .with_minimum_calls(2),
    );
    rig.run("SSS"); // bucket [0, 1 s)
    rig.clock.advance(9 * SEC + 900 * MS);
    rig.run("F"); // bucket [9 s, 10 s): 1/4
    assert_eq!(rig.state(), State::Closed);
    rig.clock.advance(100 * MS); // the first bucket expires
    let s = rig.breaker.snapshot();
    assert_eq!((s.calls, s.failures), (1, 1));
}

#[test]
fn time_window_success_trips_when_expiry_leaves_it_short_of_the_minimum() {
    let rig = Rig::new(
        BreakerConfig::failure_rate_time(0.5, 10 * SEC)
            .with_buckets(10)
            .with_minimum_calls(2),
    );
    rig.run("SSS");
    rig.clock.advance(5 * SEC);
    rig.run("F"); // 1/4: no run of successes can trip this, until its newest bucket ends
    rig.clock.advance(5 * SEC + 500 * MS); // the successes expire: 1/1, below the minimum
    assert_eq!(rig.state(), State::Closed);
    rig.ok(); // 1/2
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn time_window_successes_then_failures_in_one_bucket_trip_on_the_threshold() {
    let rig = Rig::new(BreakerConfig::failure_rate_time(0.5, 10 * SEC).with_minimum_calls(4));
    rig.run("SSSS");
    rig.run("FFF");
    assert_eq!(rig.state(), State::Closed, "3/7");
    rig.fail(); // 4/8
    assert_eq!(rig.state(), State::Open);
}

/// On the system clock, successes counted without the lock read the coarse clock where there is
/// one; nothing expires from a minute-long window during the test, so the counts are exact.
#[test]
fn time_window_on_the_system_clock_counts_every_success() {
    let breaker = CircuitBreaker::new(
        BreakerConfig::failure_rate_time(0.5, Duration::from_secs(60)).with_minimum_calls(4),
    )
    .unwrap();
    let run = |n: usize, ok: bool| {
        for _ in 0..n {
            let permit = breaker.try_acquire().unwrap();
            if ok {
                permit.success()
            } else {
                permit.failure()
            }
        }
    };
    run(1000, true);
    run(999, false);
    let s = breaker.snapshot();
    assert_eq!((s.state, s.calls, s.failures), (State::Closed, 1999, 999));
    run(1, false); // 1000/2000
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn time_buckets_expire() {
    let rig = Rig::new(
        BreakerConfig::failure_rate_time(0.5, 10 * SEC)
            .with_buckets(10)
            .with_minimum_calls(4),
    );
    rig.run("FF");
    rig.clock.advance(10 * SEC + 500 * MS);
    assert_eq!(
        rig.breaker.snapshot().calls,
        0,
        "the first bucket has expired"
    );
    // Without expiry this would be F F S S F S = 50% and trip.
    rig.run("SSFS");
    assert_eq!(rig.state(), State::Closed);
    assert_eq!(rig.breaker.snapshot().failure_rate, Some(0.25));
}

#[test]
fn time_window_needs_the_minimum_throughput() {
    let rig = Rig::new(BreakerConfig::failure_rate_time(0.5, 10 * SEC).with_minimum_calls(3));
    rig.run("FF");
    assert_eq!(
        rig.state(),
        State::Closed,
        "2 calls are below the minimum of 3"
    );
    rig.clock.advance(9 * SEC);
    rig.ok(); // all three still in the window: 2/3
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn time_window_slides_by_whole_buckets() {
    let rig = Rig::new(
        BreakerConfig::failure_rate_time(0.5, 10 * SEC)
            .with_buckets(2)
            .with_minimum_calls(2),
    );
    rig.run("F");
    rig.clock.advance(9 * SEC); // bucket 1 of [0, 10): the failure is still in the window
    rig.run("S");
    assert_eq!(rig.state(), State::Open, "1/2 >= 50%");
}

// ---- slow calls -----------------------------------------------------------------------------

fn slow_call(rig: &Rig, took: Duration, failed: bool) {
    let permit = rig.breaker.try_acquire().expect("admitted");
    rig.clock.advance(took);
    if failed {
        permit.failure()
    } else {
        permit.success()
    }
}

#[test]
fn slow_call_rate_trips_on_slow_successes() {
    let rig = Rig::new(BreakerConfig::slow_call_rate(0.5, 100 * MS, 4));
    slow_call(&rig, 150 * MS, false);
    slow_call(&rig, 10 * MS, false);
    slow_call(&rig, 99 * MS, false);
    assert_eq!(rig.state(), State::Closed);
    slow_call(&rig, 100 * MS, false); // at the threshold counts as slow: 2/4
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn slow_rate_and_failure_rate_trip_independently() {
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.5, 4).with_slow_calls(100 * MS, 0.5));
    // 1 slow success and 1 fast failure: 25% slow, 25% failed. Adding them up (50% "bad")
    // would trip.
    slow_call(&rig, 200 * MS, false);
    slow_call(&rig, MS, true);
    slow_call(&rig, MS, false);
    slow_call(&rig, MS, false);
    assert_eq!(rig.state(), State::Closed);
    assert_eq!(rig.breaker.snapshot().slow_calls, 1);
    slow_call(&rig, 200 * MS, true); // window [F S S SF]: 2/4 failed, 1/4 slow
    assert_eq!(rig.state(), State::Open);
}

// ---- half-open ------------------------------------------------------------------------------

#[test]
fn half_open_admits_at_most_the_probe_limit() {
    let rig = tripped(
        BreakerConfig::consecutive_failures(1)
            .with_half_open_probes(2)
            .with_successes_to_close(3),
    );
    let a = rig.breaker.try_acquire().unwrap();
    let b = rig.breaker.try_acquire().unwrap();
    assert!(a.is_probe() && b.is_probe());
    let rejected = rig.breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.state(), State::HalfOpen);
    assert_eq!(rig.breaker.snapshot().probes_in_flight, 2);
    a.success();
    let c = rig
        .breaker
        .try_acquire()
        .expect("a finished probe frees its slot");
    b.success();
    assert_eq!(rig.state(), State::HalfOpen, "2 of 3 successes");
    c.success();
    assert_eq!(rig.state(), State::Closed);
}

#[test]
fn the_first_probe_failure_reopens() {
    let rig = tripped(
        BreakerConfig::consecutive_failures(1)
            .with_half_open_probes(2)
            .with_successes_to_close(2),
    );
    let a = rig.breaker.try_acquire().unwrap();
    let b = rig.breaker.try_acquire().unwrap();
    a.success();
    b.failure();
    assert_eq!(rig.state(), State::Open);
    let log = rig.transitions();
    assert_eq!(
        log.last(),
        Some(&(State::HalfOpen, State::Open, Reason::ProbeFailed))
    );
}

#[test]
fn a_dropped_probe_returns_its_slot_and_counts_as_nothing() {
    let rig = tripped(BreakerConfig::consecutive_failures(1).with_successes_to_close(1));
    let probe = rig.breaker.try_acquire().unwrap();
    assert!(rig.breaker.try_acquire().is_err());
    drop(probe);
    assert_eq!(rig.state(), State::HalfOpen, "not counted as a success");
    assert_eq!(rig.breaker.snapshot().probes_in_flight, 0);
    rig.ok();
    assert_eq!(rig.state(), State::Closed);
}

#[test]
fn a_probe_that_panics_returns_its_slot() {
    let rig = tripped(BreakerConfig::consecutive_failures(1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = rig
            .breaker
            .call_blocking(|| -> Result<(), ()> { panic!("boom") });
    }));
    assert!(result.is_err());
    assert_eq!(rig.state(), State::HalfOpen);
    rig.ok();
    assert_eq!(rig.state(), State::Closed);
}

#[test]
fn a_probe_that_never_finishes_cannot_wedge_the_breaker() {
    let rig = tripped(BreakerConfig::consecutive_failures(1).with_probe_lease(5 * SEC));
    let stuck = rig.breaker.try_acquire().unwrap();
    let probed_at = rig.clock.now();
    rig.clock.advance(4 * SEC);
    let rejected = rig.breaker.try_acquire().unwrap_err();
    assert_eq!(
        rejected.retry_after().map(|d| rig.clock.now() + d),
        Some(probed_at + 5 * SEC),
        "the lease end bounds the wait"
    );
    rig.clock.advance(SEC);
    let fresh = rig
        .breaker
        .try_acquire()
        .expect("the lease expired: slots reclaimed");
    assert!(fresh.is_probe());
    assert_eq!(
        rig.transitions().last(),
        Some(&(State::HalfOpen, State::HalfOpen, Reason::LeaseExpired))
    );
    stuck.failure();
    assert_eq!(
        rig.state(),
        State::HalfOpen,
        "the reclaimed probe's outcome is stale"
    );
    fresh.success();
    assert_eq!(rig.state(), State::Closed);
}

// ---- generations ----------------------------------------------------------------------------

#[test]
fn a_late_failure_admitted_before_a_trip_does_not_reopen_a_breaker_that_has_since_closed() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(1).with_open_duration(SEC));
    let slow = rig.breaker.try_acquire().unwrap();
    rig.fail(); // trips
    rig.clock.advance(SEC);
    rig.ok(); // probe closes
    assert_eq!(rig.state(), State::Closed);
    slow.failure();
    assert_eq!(rig.state(), State::Closed);
    assert_eq!(rig.breaker.snapshot().consecutive_failures, 0);
}

#[test]
fn a_late_outcome_never_drives_a_window_transition() {
    let rig = Rig::new(
        BreakerConfig::failure_rate_count(0.5, 2)
            .with_minimum_calls(1)
            .with_open_duration(SEC),
    );
    let late = rig.breaker.try_acquire().unwrap();
    rig.fail();
    rig.clock.advance(SEC);
    rig.ok();
    assert_eq!(rig.state(), State::Closed);
    late.failure();
    assert_eq!(rig.state(), State::Closed);
    assert_eq!(rig.breaker.snapshot().calls, 0);
}

#[test]
fn a_success_admitted_before_a_trip_does_not_close_a_half_open_breaker() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(1).with_open_duration(SEC));
    let late = rig.breaker.try_acquire().unwrap();
    rig.fail(); // trips
    rig.clock.advance(SEC);
    let probe = rig.breaker.try_acquire().unwrap();
    assert_eq!(rig.state(), State::HalfOpen);
    late.success();
    assert_eq!(
        rig.state(),
        State::HalfOpen,
        "only a probe's outcome decides"
    );
    probe.success();
    assert_eq!(rig.state(), State::Closed);
}

#[test]
fn a_late_probe_success_does_not_close_a_reopened_breaker() {
    let rig = tripped(BreakerConfig::consecutive_failures(1).with_half_open_probes(2));
    let a = rig.breaker.try_acquire().unwrap();
    let b = rig.breaker.try_acquire().unwrap();
    b.failure();
    a.success();
    assert_eq!(rig.state(), State::Open);
}

// ---- open duration growth -------------------------------------------------------------------

#[test]
fn open_duration_grows_per_consecutive_trip_and_a_close_resets_it() {
    let backoff = Backoff::exponential(SEC)
        .with_max_delay(4 * SEC)
        .with_jitter(Jitter::None);
    let rig = Rig::new(BreakerConfig::consecutive_failures(1).with_open_backoff(backoff));
    let mut opens = Vec::new();
    rig.fail();
    for _ in 0..4 {
        let wait = rig
            .breaker
            .try_acquire()
            .unwrap_err()
            .retry_after()
            .unwrap();
        opens.push(wait);
        rig.clock.advance(wait);
        rig.fail(); // the probe fails: re-open, longer
    }
    assert_eq!(opens, [SEC, 2 * SEC, 4 * SEC, 4 * SEC]);
    let wait = rig
        .breaker
        .try_acquire()
        .unwrap_err()
        .retry_after()
        .unwrap();
    rig.clock.advance(wait);
    rig.ok(); // closes
    rig.fail();
    assert_eq!(
        rig.breaker.try_acquire().unwrap_err().retry_after(),
        Some(SEC)
    );
}

#[test]
fn jittered_open_durations_spread_and_stay_capped() {
    let backoff = Backoff::exponential(SEC)
        .with_max_delay(8 * SEC)
        .with_jitter(Jitter::Full);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let rig = Rig::new(BreakerConfig::consecutive_failures(1).with_open_backoff(backoff));
        rig.fail();
        let d = rig
            .breaker
            .try_acquire()
            .unwrap_err()
            .retry_after()
            .unwrap();
        assert!(d <= SEC);
        seen.insert(d);
    }
    assert!(
        seen.len() > 1,
        "a fleet's breakers do not all probe at once"
    );
}

/// Defect 2 of issue 15: a jittered open duration may draw zero (full jitter draws from
/// `[0, base]`); the breaker still rejects the calls of the instant it tripped.
#[test]
fn a_jittered_open_duration_that_draws_zero_still_rejects_at_once() {
    let drawing_zero = (0..1000)
        .map(|seed| {
            Backoff::exponential(Duration::from_nanos(1))
                .with_jitter(Jitter::Full)
                .with_seed(seed)
        })
        .find(|b| b.delays().unwrap().next() == Some(Duration::ZERO))
        .expect("half the seeds draw 0 from [0, 1 ns]");
    let rig = Rig::new(BreakerConfig::consecutive_failures(1).with_open_backoff(drawing_zero));
    rig.fail();
    let open = rig
        .breaker
        .try_acquire()
        .expect_err("the call right after the trip is rejected");
    assert_eq!(open.retry_after(), Some(Duration::from_nanos(1)));
    rig.clock.advance(Duration::from_nanos(1));
    assert!(rig.breaker.try_acquire().unwrap().is_probe());
}

// ---- manual control -------------------------------------------------------------------------

#[test]
fn force_open_force_closed_and_reset() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(1));
    rig.breaker.force_open();
    let open = rig.breaker.try_acquire().unwrap_err();
    assert_eq!(
        (open.state(), open.retry_after()),
        (State::ForcedOpen, None)
    );
    rig.breaker.force_closed();
    rig.run("FFF");
    assert_eq!(
        rig.state(),
        State::ForcedClosed,
        "disabled: admits all, never trips"
    );
    assert_eq!(
        rig.breaker.snapshot().consecutive_failures,
        3,
        "but still records"
    );
    rig.breaker.reset();
    assert_eq!(rig.state(), State::Closed);
    assert_eq!(rig.breaker.snapshot().consecutive_failures, 0);
    rig.fail();
    assert_eq!(rig.state(), State::Open);
    let reasons: Vec<_> = rig.transitions().into_iter().map(|t| t.2).collect();
    assert_eq!(
        reasons,
        [
            Reason::Manual,
            Reason::Manual,
            Reason::Manual,
            Reason::Tripped
        ]
    );
}

/// Defect 1 of issue 15: a manual transition to the state the breaker is already in changes
/// nothing, so it tells nobody.
#[test]
fn a_manual_transition_to_the_current_state_emits_no_state_change() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(3));
    rig.run("FF");
    rig.breaker.reset(); // closed already: the counts clear, the state does not change
    assert_eq!(rig.transitions(), []);
    assert_eq!(
        rig.breaker.snapshot().consecutive_failures,
        0,
        "reset clears the counts"
    );
    rig.fail();
    assert_eq!(rig.state(), State::Closed, "one failure since the reset");

    rig.breaker.force_open();
    let generation = rig.breaker.snapshot().generation;
    rig.breaker.force_open();
    assert_eq!(
        rig.breaker.snapshot().generation,
        generation,
        "nothing changed"
    );
    rig.breaker.force_closed();
    rig.fail();
    rig.breaker.force_closed();
    assert_eq!(
        rig.breaker.snapshot().consecutive_failures,
        1,
        "a second force_closed keeps what the first one records"
    );
    assert_eq!(
        rig.transitions(),
        [
            (State::Closed, State::ForcedOpen, Reason::Manual),
            (State::ForcedOpen, State::ForcedClosed, Reason::Manual),
        ]
    );
}

#[test]
fn a_permit_from_before_a_reset_is_stale() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(1));
    let old = rig.breaker.try_acquire().unwrap();
    rig.breaker.reset();
    old.failure();
    assert_eq!(rig.state(), State::Closed);
}

#[test]
fn a_probe_from_before_a_reset_changes_nothing_when_it_succeeds() {
    for config in [
        BreakerConfig::consecutive_failures(2),
        BreakerConfig::failure_rate_count(0.5, 4).with_minimum_calls(2),
    ] {
        // Into a clean closed breaker (the inlined path: no test of the permit).
        let rig = tripped(config);
        let probe = rig.breaker.try_acquire().unwrap();
        assert!(probe.is_probe());
        rig.breaker.reset();
        probe.success();
        rig.fail();
        assert_eq!(rig.state(), State::Closed, "{config:?}");
        let clean = rig.breaker.snapshot();

        // Into a closed breaker with a failure counted: the stale probe must neither reset the
        // failures nor count as a call.
        let rig = tripped(config);
        let probe = rig.breaker.try_acquire().unwrap();
        rig.breaker.reset();
        rig.fail();
        probe.success();
        let after = rig.breaker.snapshot();
        assert_eq!(
            (after.consecutive_failures, after.calls, after.failures),
            (clean.consecutive_failures, clean.calls, clean.failures),
            "{config:?}"
        );
        rig.fail();
        assert_eq!(rig.state(), State::Open, "{config:?}: the failures add up");
    }
}

// ---- observability --------------------------------------------------------------------------

#[test]
fn callbacks_run_outside_any_lock_and_may_call_back_into_the_breaker() {
    let handle: Arc<OnceLock<CircuitBreaker>> = Arc::new(OnceLock::new());
    let inside = Arc::clone(&handle);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let breaker = CircuitBreaker::builder(BreakerConfig::failure_rate_count(0.5, 2))
        .name("pricing")
        .on_state_change(move |change| {
            // Would deadlock if the window lock were held here.
            let snapshot = inside.get().unwrap().snapshot();
            sink.lock()
                .unwrap()
                .push((change.name, change.to, snapshot.state));
        })
        .build()
        .unwrap();
    handle.set(breaker.clone()).unwrap();
    breaker.try_acquire().unwrap().failure();
    breaker.try_acquire().unwrap().failure();
    assert_eq!(
        *seen.lock().unwrap(),
        [("pricing", State::Open, State::Open)]
    );
}

// ---- classification and the closure APIs ----------------------------------------------------

#[test]
fn classification_decides_what_counts() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(2));
    // A 503 that arrived as Ok is a failure; a 404 error is ignored.
    let classify = |r: &Result<u16, u16>| match r {
        Ok(503) => Class::Transient,
        Ok(_) => Class::Success,
        Err(404) => Class::Ignored,
        Err(_) => Class::Permanent,
    };
    assert_eq!(
        rig.breaker
            .call_blocking_with(classify, || Ok(503))
            .unwrap(),
        503
    );
    assert!(
        rig.breaker
            .call_blocking_with(classify, || Err(404))
            .is_err()
    );
    assert_eq!(rig.state(), State::Closed);
    let _ = rig.breaker.call_blocking_with(classify, || Err(400));
    assert_eq!(rig.state(), State::Open);
}

// Paused tokio time drives the breaker's clock only with the `tokio` feature.
#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn async_call_runs_on_paused_time() {
    let breaker =
        CircuitBreaker::new(BreakerConfig::consecutive_failures(1).with_open_duration(SEC))
            .unwrap();
    let err = breaker
        .call(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err::<(), _>("timeout")
        })
        .await
        .unwrap_err();
    assert_eq!(err.into_inner(), Some("timeout"));
    assert_eq!(breaker.state(), State::Open);
    let open = breaker
        .call(|| async { Ok::<_, ()>(()) })
        .await
        .unwrap_err();
    assert!(open.is_open());
    tokio::time::advance(SEC).await;
    assert_eq!(breaker.call(|| async { Ok::<_, ()>(7) }).await.unwrap(), 7);
    assert_eq!(breaker.state(), State::Closed);
}

// Paused tokio time drives the breaker's clock only with the `tokio` feature.
#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_future_returns_its_slot() {
    let breaker =
        CircuitBreaker::new(BreakerConfig::consecutive_failures(1).with_open_duration(SEC))
            .unwrap();
    breaker.try_acquire().unwrap().failure();
    tokio::time::advance(SEC).await;
    let never = breaker.call(std::future::pending::<Result<(), ()>>);
    // Time out the probe: its future is dropped mid-call.
    assert!(tokio::time::timeout(SEC, never).await.is_err());
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.snapshot().probes_in_flight, 0);
    breaker.call(|| async { Ok::<_, ()>(()) }).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

// A call can be spawned on a multi-threaded runtime: `Call` is `Send` when the closure, its
// future and the classifier are.
#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_call_can_be_spawned() {
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    let task = tokio::spawn({
        let breaker = breaker.clone();
        async move { breaker.call(|| async { Ok::<_, ()>(5) }).await }
    });
    assert_eq!(task.await.unwrap(), Ok(5));
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn async_call_needs_no_runtime() {
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    let fut = std::pin::pin!(breaker.call(|| async { Ok::<_, ()>(3) }));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert_eq!(fut.poll(&mut cx), std::task::Poll::Ready(Ok(3)));
}

/// Polls `fut` once with a no-op waker, catching a panic.
fn poll_once<F: std::future::Future>(
    fut: std::pin::Pin<&mut F>,
) -> std::thread::Result<std::task::Poll<F::Output>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(&mut cx)))
}

#[test]
fn an_async_call_asks_the_breaker_at_its_first_poll_not_when_built() {
    let rig = tripped(BreakerConfig::consecutive_failures(1).with_half_open_probes(1));
    let early = rig.breaker.call(|| async { Ok::<_, ()>(1) });
    let mut early = std::pin::pin!(early);
    // Built, not polled: holds no slot, so another caller can probe.
    let probe = rig.breaker.try_acquire().expect("the slot is free");
    assert!(probe.is_probe());
    match poll_once(early.as_mut()).unwrap() {
        std::task::Poll::Ready(Err(err)) => assert!(err.is_open(), "{err:?}"),
        other => panic!("polled: asks now, and is rejected while the slot is held: {other:?}"),
    }
    drop(probe);
    let late = std::pin::pin!(rig.breaker.call(|| async { Ok::<_, ()>(2) }));
    assert_eq!(
        poll_once(late).unwrap(),
        std::task::Poll::Ready(Ok(2)),
        "the dropped probe returned its slot"
    );
    assert_eq!(rig.state(), State::Closed);
}

#[test]
fn an_async_probe_that_panics_anywhere_returns_its_slot() {
    type Fut = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u32, u32>>>>;
    /// Whether polling a probe that runs `f` and classifies with `classify` panicked, and the
    /// slot is free again afterwards.
    fn panics_and_frees_its_slot(
        rig: &Rig,
        classify: fn(&Result<u32, u32>) -> Class,
        f: fn() -> Fut,
    ) -> bool {
        let panicked = poll_once(std::pin::pin!(rig.breaker.call_with(classify, f))).is_err();
        panicked && rig.state() == State::HalfOpen && rig.breaker.snapshot().probes_in_flight == 0
    }
    let rig = tripped(BreakerConfig::consecutive_failures(1).with_half_open_probes(1));
    let ok: fn(&Result<u32, u32>) -> Class = |_| Class::Success;
    let ready: fn() -> Fut = || Box::pin(async { Ok(1) });
    assert!(
        panics_and_frees_its_slot(&rig, ok, || panic!("building the future")),
        "building the future"
    );
    assert!(
        panics_and_frees_its_slot(&rig, ok, || Box::pin(async { panic!("polling it") })),
        "polling the future"
    );
    assert!(
        panics_and_frees_its_slot(&rig, |_| panic!("classifying"), ready),
        "classifying the outcome"
    );
    let fut = std::pin::pin!(rig.breaker.call_with(ok, ready));
    assert_eq!(poll_once(fut).unwrap(), std::task::Poll::Ready(Ok(1)));
    assert_eq!(rig.state(), State::Closed);
}

use std::future::Future as _;

// ---- configuration --------------------------------------------------------------------------

#[test]
fn invalid_configs_are_errors_at_construction() {
    let cases = [
        (
            BreakerConfig::consecutive_failures(0),
            "consecutive_failures",
        ),
        (
            BreakerConfig::consecutive_failures(70_000),
            "consecutive_failures",
        ),
        (
            BreakerConfig::consecutive_failures(3).with_failure_rate(0.5),
            "failure_rate",
        ),
        (
            BreakerConfig::consecutive_failures(3).with_slow_calls(SEC, 0.5),
            "slow_calls",
        ),
        (BreakerConfig::failure_rate_count(0.0, 10), "failure_rate"),
        (BreakerConfig::failure_rate_count(1.01, 10), "failure_rate"),
        (
            BreakerConfig::failure_rate_count(f64::NAN, 10),
            "failure_rate",
        ),
        (BreakerConfig::failure_rate_count(0.5, 0), "window_size"),
        (
            BreakerConfig::failure_rate_count(0.5, 10).with_minimum_calls(0),
            "minimum_calls",
        ),
        (
            BreakerConfig::failure_rate_count(0.5, 10).with_minimum_calls(11),
            "minimum_calls",
        ),
        (
            BreakerConfig::failure_rate_time(0.5, Duration::ZERO),
            "window",
        ),
        (
            BreakerConfig::failure_rate_time(0.5, SEC).with_buckets(0),
            "buckets",
        ),
        (
            BreakerConfig::failure_rate_time(0.5, SEC).with_minimum_calls(0),
            "minimum_calls",
        ),
        (
            BreakerConfig::slow_call_rate(0.5, Duration::ZERO, 10),
            "slow_calls",
        ),
        (BreakerConfig::slow_call_rate(2.0, SEC, 10), "slow_calls"),
        (
            BreakerConfig::consecutive_failures(1).with_half_open_probes(0),
            "half_open_probes",
        ),
        (
            BreakerConfig::consecutive_failures(1).with_successes_to_close(0),
            "successes_to_close",
        ),
        (
            BreakerConfig::consecutive_failures(1).with_open_duration(Duration::ZERO),
            "open_duration",
        ),
        (
            BreakerConfig::consecutive_failures(1).with_probe_lease(Duration::ZERO),
            "probe_lease",
        ),
        (
            BreakerConfig::consecutive_failures(1)
                .with_open_backoff(Backoff::exponential(SEC).with_multiplier(0.5)),
            "multiplier",
        ),
        (BreakerConfig::failure_count_time(0, SEC), "failure_count"),
        (
            BreakerConfig::failure_count_time(3, Duration::ZERO),
            "window",
        ),
        (
            BreakerConfig::failure_rate_count(0.5, 10).with_failure_count(11),
            "failure_count",
        ),
        (
            BreakerConfig::consecutive_failures(3).with_failure_count(2),
            "failure_count",
        ),
        (
            BreakerConfig::consecutive_failures(1).with_count_reset_interval(Duration::ZERO),
            "count_reset_interval",
        ),
        (
            BreakerConfig::consecutive_failures(1).with_half_open_max_wait(Duration::ZERO),
            "half_open_max_wait",
        ),
        (
            BreakerConfig::consecutive_failures(1).with_successes_to_close_out_of(3, 2),
            "successes_out_of",
        ),
        (
            BreakerConfig::consecutive_failures(1).with_successes_to_close_out_of(0, 2),
            "successes_to_close",
        ),
        (
            BreakerConfig::consecutive_failures(1).with_successes_to_close_out_of(3, 70_000),
            "successes_out_of",
        ),
        // Defect 2 of issue 15: a growing open duration whose first delay is zero.
        (
            BreakerConfig::consecutive_failures(1)
                .with_open_backoff(Backoff::exponential(Duration::ZERO)),
            "open_backoff",
        ),
        (
            BreakerConfig::consecutive_failures(1).with_open_backoff(
                Backoff::linear(Duration::ZERO)
                    .with_increment(SEC)
                    .with_jitter(Jitter::None),
            ),
            "open_backoff",
        ),
        (
            BreakerConfig::consecutive_failures(1)
                .with_open_backoff(Backoff::constant(Duration::ZERO).with_jitter(Jitter::Equal)),
            "open_backoff",
        ),
    ];
    for (config, field) in cases {
        let err = CircuitBreaker::new(config).unwrap_err();
        assert_eq!(err.field(), field, "{config:?}: {err}");
        assert!(!err.message().is_empty());
    }
}

/// Bad input never panics: the largest durations and counts build (or are refused with an
/// error) and serve calls in every state.
#[test]
fn extreme_settings_never_panic() {
    let configs = [
        BreakerConfig::consecutive_failures(1)
            .with_count_reset_interval(Duration::MAX)
            .with_half_open_max_wait(Duration::MAX)
            .with_probe_lease(Duration::MAX)
            .with_open_duration(Duration::from_nanos(1)),
        BreakerConfig::failure_count_time(u32::MAX, Duration::MAX).with_minimum_calls(u32::MAX),
        BreakerConfig::failure_count_time(1, Duration::from_nanos(1))
            .with_count_reset_interval(Duration::from_nanos(1))
            .with_buckets(1),
        BreakerConfig::failure_rate_count(1.0, 1)
            .with_failure_count(1)
            .with_successes_to_close_out_of(1, 65_535)
            .with_half_open_probes(65_535)
            .with_half_open_max_wait(Duration::from_nanos(1))
            .with_open_duration(Duration::MAX),
        BreakerConfig::consecutive_failures(1).with_successes_to_close_out_of(u32::MAX, u32::MAX),
    ];
    for config in configs {
        let clock = staunch::ManualClock::new();
        let Ok(breaker) = CircuitBreaker::builder(config)
            .clock(clock.clone().into())
            .build()
        else {
            continue;
        };
        for i in 0..200u32 {
            // From a nanosecond to centuries: periods, waits and leases end on every scale.
            clock.advance(Duration::from_nanos(1 << (i % 64)));
            if let Ok(permit) = breaker.try_acquire() {
                if i % 3 == 0 {
                    permit.success()
                } else {
                    permit.failure()
                }
            }
            let _ = breaker.snapshot();
        }
        breaker.disable();
        breaker.reset();
    }
}

// ---- compile-time checks --------------------------------------------------------------------

#[test]
fn public_types_are_send_sync_and_unpin() {
    fn assert_send_sync<T: Send + Sync + Unpin>() {}
    assert_send_sync::<CircuitBreaker>();
    assert_send_sync::<CircuitOpen>();
    assert_send_sync::<staunch::breaker::Permit<'static>>();
    assert_send_sync::<staunch::breaker::OwnedPermit>();
    assert_send_sync::<staunch::breaker::Error<std::io::Error>>();
    // Small enough to travel in registers on the hot path (see `CircuitOpen`'s docs).
    assert_eq!(std::mem::size_of::<staunch::breaker::Permit<'static>>(), 16);
    assert_eq!(std::mem::size_of::<CircuitOpen>(), 8);
    assert_eq!(
        std::mem::size_of::<Result<u64, staunch::breaker::Error<std::io::Error>>>(),
        16
    );
    fn assert_send<T: Send>(_: &T) {}
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    assert_send(&breaker.call(|| async { Ok::<_, ()>(()) }));
}

#[cfg(feature = "tokio")]
mod automatic_half_open;
mod disabled;
mod failure_count;
mod half_open;
mod interval;
mod model;
mod stress;
mod telemetry;
#[cfg(feature = "tower")]
mod tower_layer;
