//! The count-reset interval (gobreaker's `Interval`): in closed, the counts clear on a fixed
//! period, in a new generation.

use std::time::Duration;

use staunch::breaker::{BreakerConfig, State};

use crate::support::{MS, Rig, SEC};

fn every_10s(config: BreakerConfig) -> Rig {
    Rig::new(config.with_count_reset_interval(10 * SEC))
}

#[test]
fn the_counts_clear_at_the_end_of_each_period() {
    let rig = every_10s(BreakerConfig::consecutive_failures(3));
    rig.run("FF");
    rig.clock.advance(10 * SEC);
    rig.fail();
    assert_eq!(rig.state(), State::Closed, "a new period: one failure");
    let s = rig.breaker.snapshot();
    assert_eq!((s.consecutive_failures, s.generation), (1, 1));
    rig.fail();
    rig.clock.advance(9 * SEC + 999 * MS);
    rig.fail();
    assert_eq!(rig.state(), State::Open, "three failures in [10 s, 20 s)");
    assert_eq!(
        rig.transitions().len(),
        1,
        "a new period is no state change"
    );
}

#[test]
fn without_the_interval_the_same_failures_trip() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(3));
    rig.run("FF");
    rig.clock.advance(10 * SEC);
    rig.fail();
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn a_window_clears_with_its_period() {
    let config = BreakerConfig::failure_rate_count(0.5, 4).with_minimum_calls(2);
    let rig = every_10s(config);
    rig.run("SSF");
    rig.clock.advance(10 * SEC);
    rig.fail();
    assert_eq!(rig.state(), State::Closed, "[F]: below the minimum");
    let s = rig.breaker.snapshot();
    assert_eq!((s.calls, s.failures), (1, 1));
    rig.fail();
    assert_eq!(rig.state(), State::Open);

    let rig = every_10s(BreakerConfig::failure_rate_time(0.5, 60 * SEC).with_minimum_calls(2));
    rig.run("SSF");
    rig.clock.advance(10 * SEC);
    rig.ok();
    assert_eq!(
        rig.breaker.snapshot().calls,
        1,
        "cleared, though the minute has not passed"
    );
}

#[test]
fn a_call_admitted_before_the_end_of_its_period_does_not_count_after_it() {
    let rig = every_10s(BreakerConfig::consecutive_failures(2));
    rig.fail();
    let late = rig.breaker.try_acquire().unwrap();
    rig.clock.advance(10 * SEC);
    late.failure(); // arrives after its period ended, before any call started the next one
    assert_eq!(rig.state(), State::Closed);
    assert_eq!(rig.breaker.snapshot().consecutive_failures, 0);
    rig.fail();
    assert_eq!(rig.state(), State::Closed, "one failure in the new period");

    // The same after a call has started the next period (a new generation).
    let rig = every_10s(BreakerConfig::consecutive_failures(2));
    rig.clock.advance(5 * SEC);
    let late = rig.breaker.try_acquire().unwrap();
    rig.clock.advance(5 * SEC);
    rig.fail();
    late.failure();
    assert_eq!(rig.state(), State::Closed);
}

#[test]
fn successes_of_an_ended_period_do_not_count_in_the_next() {
    let config = BreakerConfig::failure_rate_count(0.5, 100).with_minimum_calls(4);
    let rig = every_10s(config);
    rig.run("FSS"); // successes may skip the window lock (see pending.rs)
    let late: Vec<_> = (0..3).map(|_| rig.breaker.try_acquire().unwrap()).collect();
    rig.clock.advance(10 * SEC);
    for permit in late {
        permit.success();
    }
    rig.run("FF");
    let s = rig.breaker.snapshot();
    assert_eq!((s.calls, s.failures), (2, 2), "{s:?}");
    rig.run("SF"); // [F F S F]: 75%
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn the_periods_are_a_fixed_grid_from_the_moment_the_breaker_closed() {
    let rig = every_10s(BreakerConfig::consecutive_failures(3));
    // Quiet until 25 s: the first call starts the period [20 s, 30 s), not [25 s, 35 s).
    rig.clock.advance(25 * SEC);
    rig.run("FF");
    rig.clock.advance(6 * SEC);
    rig.fail();
    assert_eq!(rig.state(), State::Closed, "31 s is in the next period");
    assert_eq!(
        rig.breaker.snapshot().generation,
        2,
        "one generation per period started"
    );
}

#[test]
fn a_close_starts_the_grid_again() {
    let rig = every_10s(
        BreakerConfig::consecutive_failures(2).with_open_duration(Duration::from_millis(7300)),
    );
    rig.run("FF");
    rig.clock.advance(Duration::from_millis(7300));
    rig.ok(); // the probe closes at 7.3 s: periods [7.3 s, 17.3 s), ...
    assert_eq!(rig.state(), State::Closed);
    rig.clock.advance(700 * MS);
    rig.fail(); // 8 s
    rig.clock.advance(9 * SEC);
    rig.fail(); // 17 s: the same period
    assert_eq!(rig.state(), State::Open);

    // A reset too.
    let rig = every_10s(BreakerConfig::consecutive_failures(2));
    rig.clock.advance(5 * SEC);
    rig.breaker.reset(); // periods [5 s, 15 s), ...
    rig.clock.advance(4 * SEC);
    rig.fail(); // 9 s
    rig.clock.advance(5 * SEC);
    rig.fail(); // 14 s
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn a_snapshot_after_the_end_of_a_period_shows_it_empty() {
    let rig = every_10s(BreakerConfig::failure_rate_count(0.5, 10).with_minimum_calls(5));
    rig.run("FSF");
    rig.clock.advance(10 * SEC);
    let s = rig.breaker.snapshot();
    assert_eq!((s.calls, s.failures, s.failure_rate), (0, 0, None));
    let rig = every_10s(BreakerConfig::consecutive_failures(5));
    rig.run("FF");
    rig.clock.advance(10 * SEC);
    assert_eq!(rig.breaker.snapshot().consecutive_failures, 0);
}

#[test]
fn forced_closed_keeps_counting_across_periods() {
    let rig = every_10s(BreakerConfig::consecutive_failures(3));
    rig.breaker.force_closed();
    rig.run("FF");
    rig.clock.advance(10 * SEC);
    rig.fail();
    assert_eq!(rig.breaker.snapshot().consecutive_failures, 3);
}
