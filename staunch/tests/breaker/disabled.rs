//! Disabled (resilience4j's `DISABLED`): admits every call and records nothing, unlike forced
//! closed (its `METRICS_ONLY`), which keeps recording.

use staunch::breaker::{BreakerConfig, CircuitBreaker, Reason, State};

use crate::support::{Rig, SEC};

#[test]
fn disabled_admits_every_call_and_records_nothing() {
    for config in [
        BreakerConfig::consecutive_failures(1),
        BreakerConfig::failure_rate_count(0.5, 4).with_minimum_calls(1),
        BreakerConfig::failure_rate_time(0.5, 10 * SEC).with_minimum_calls(1),
        BreakerConfig::slow_call_rate(0.5, SEC, 4).with_failure_rate(0.5),
    ] {
        let rig = Rig::new(config);
        rig.breaker.disable();
        rig.run(&"FSFI".repeat(25));
        let s = rig.breaker.snapshot();
        assert_eq!(s.state, State::Disabled, "{config:?}");
        assert_eq!(
            (s.consecutive_failures, s.calls, s.failures, s.failure_rate),
            (0, 0, 0, None),
            "{config:?}: nothing recorded"
        );

        // Forced closed admits the same calls and still records them.
        rig.breaker.force_closed();
        rig.run("FF");
        let s = rig.breaker.snapshot();
        assert_eq!(s.state, State::ForcedClosed);
        assert!(
            s.consecutive_failures == 2 || s.failures == 2,
            "{config:?}: forced closed records: {s:?}"
        );
    }
}

#[test]
fn disable_and_reset_are_manual_transitions_and_a_second_disable_changes_nothing() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(1).with_open_duration(SEC));
    rig.fail();
    assert_eq!(rig.state(), State::Open);
    rig.breaker.disable();
    let generation = rig.breaker.snapshot().generation;
    rig.breaker.disable();
    assert_eq!(rig.breaker.snapshot().generation, generation);
    rig.fail(); // admitted, although the open period is not over
    rig.breaker.reset();
    rig.fail();
    assert_eq!(rig.state(), State::Open, "on again: it records and trips");
    assert_eq!(
        rig.transitions(),
        [
            (State::Closed, State::Open, Reason::Tripped),
            (State::Open, State::Disabled, Reason::Manual),
            (State::Disabled, State::Closed, Reason::Manual),
            (State::Closed, State::Open, Reason::Tripped),
        ]
    );
}

#[test]
fn outcomes_that_cross_a_disable_or_a_reset_are_stale() {
    let rig = Rig::new(BreakerConfig::consecutive_failures(1));
    let before = rig.breaker.try_acquire().unwrap();
    rig.breaker.disable();
    let during = rig.breaker.try_acquire().unwrap();
    before.failure(); // admitted while closed: stale
    rig.breaker.reset();
    during.failure(); // admitted while disabled: stale
    assert_eq!(rig.state(), State::Closed);
    assert_eq!(rig.breaker.snapshot().consecutive_failures, 0);
}

#[test]
fn a_breaker_can_start_disabled() {
    let rig = Rig::new(BreakerConfig::failure_rate_count(0.5, 2).with_disabled(true));
    assert_eq!(rig.state(), State::Disabled);
    rig.run("FFFF");
    assert_eq!(rig.breaker.snapshot().calls, 0);
    rig.breaker.reset();
    rig.run("FF");
    assert_eq!(rig.state(), State::Open);
    assert_eq!(
        rig.transitions(),
        [
            (State::Disabled, State::Closed, Reason::Manual),
            (State::Closed, State::Open, Reason::Tripped),
        ]
    );
}

#[test]
fn a_disabled_breaker_admits_through_every_api() {
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    breaker.force_open();
    breaker.disable();
    assert_eq!(
        breaker
            .call_blocking(|| Err::<(), _>(1))
            .unwrap_err()
            .into_inner(),
        Some(1)
    );
    let owned = breaker.try_acquire_owned().unwrap();
    assert!(!owned.is_probe());
    owned.failure();
    let fut = std::pin::pin!(breaker.call(|| async { Ok::<_, ()>(2) }));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert_eq!(
        std::future::Future::poll(fut, &mut cx),
        std::task::Poll::Ready(Ok(2))
    );
    assert_eq!(breaker.state(), State::Disabled);
}
