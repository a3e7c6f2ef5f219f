//! A failure-count threshold: trip after `k` failures in the window, whatever their share
//! (failsafe's `withFailureThreshold(k, period)` and `withFailureThresholdRatio(k, n)`).

use staunch::breaker::{BreakerConfig, Reason, State};

use crate::support::{MS, Rig, SEC};

#[test]
fn failure_count_time_trips_on_the_kth_failure_whatever_the_rate() {
    let rig = Rig::new(BreakerConfig::failure_count_time(3, 10 * SEC));
    rig.run(&"S".repeat(1000));
    rig.run("FSF");
    assert_eq!(rig.state(), State::Closed, "2 failures in 1003 calls");
    rig.run(&"S".repeat(1000));
    rig.fail(); // 3 failures: 0.15% of the calls
    assert_eq!(rig.state(), State::Open);
    assert_eq!(
        rig.transitions(),
        [(State::Closed, State::Open, Reason::Tripped)]
    );
}

#[test]
fn failures_older_than_the_window_do_not_count() {
    let rig = Rig::new(BreakerConfig::failure_count_time(2, 10 * SEC).with_buckets(10));
    rig.fail();
    rig.clock.advance(10 * SEC); // the first failure's bucket has expired
    rig.fail();
    assert_eq!(rig.state(), State::Closed, "one failure in the window");
    rig.clock.advance(9 * SEC + 999 * MS);
    rig.fail();
    assert_eq!(rig.state(), State::Open, "two failures in the window");
}

#[test]
fn a_minimum_number_of_calls_gates_the_failure_count() {
    // failsafe's withFailureExecutionThreshold: at least 5 calls in the window.
    let rig = Rig::new(BreakerConfig::failure_count_time(2, 10 * SEC).with_minimum_calls(5));
    rig.run("FFFS");
    assert_eq!(rig.state(), State::Closed, "4 calls are below the minimum");
    rig.ok(); // the fifth call, a success, meets the minimum with 3 failures in the window
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn a_count_window_with_a_failure_count_trips_on_either_threshold() {
    // 3 failures among the last 10 calls (a 30% share, below the 90% rate).
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.9, 10).with_failure_count(3));
    rig.run("FFF");
    rig.run(&"S".repeat(6));
    assert_eq!(
        rig.state(),
        State::Closed,
        "9 calls are below the minimum of 10"
    );
    rig.ok();
    assert_eq!(rig.state(), State::Open);

    // The oldest failures slide out.
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.9, 10).with_failure_count(3));
    rig.run("FSSFSSSSSS");
    rig.fail(); // [S S F S S S S S S F]: 2
    assert_eq!(rig.state(), State::Closed, "{:?}", rig.breaker.snapshot());
    rig.fail(); // [S F S S S S S S F F]: 3
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn a_time_window_with_a_rate_and_a_count_trips_on_either() {
    let config = BreakerConfig::failure_rate_time(0.5, 10 * SEC)
        .with_minimum_calls(4)
        .with_failure_count(3);
    let rig = Rig::new(config);
    rig.run("FSFS"); // 50%: the rate trips
    assert_eq!(rig.state(), State::Open);
    let rig = Rig::new(config);
    rig.run(&"S".repeat(20));
    rig.run("FFF"); // 13%: the count trips
    assert_eq!(rig.state(), State::Open);
}

#[test]
fn successes_skipping_the_lock_do_not_hide_a_count_that_trips_at_the_minimum() {
    // Two failures, below the minimum of 6 calls: the sixth call, a success, trips. The
    // successes before it must take the lock, or count in a way that still decides on it.
    let rig = Rig::new(BreakerConfig::failure_count_time(2, 10 * SEC).with_minimum_calls(6));
    rig.run("FF");
    rig.run("SSS");
    assert_eq!(rig.state(), State::Closed);
    rig.ok();
    assert_eq!(rig.state(), State::Open);
}
