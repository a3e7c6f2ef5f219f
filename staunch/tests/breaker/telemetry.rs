//! The breaker's `tracing` events and `metrics` counters and gauge, captured by a thread-local
//! recorder and subscriber (no globals, so tests do not interfere).
#![cfg(all(feature = "tracing", feature = "metrics"))]

use staunch::ManualClock;
use staunch::breaker::{BreakerConfig, CircuitBreaker, State};

#[path = "../support/telemetry.rs"]
mod capture;
use capture::{Events, Metrics, with_events};

use crate::support::SEC;

#[test]
fn transitions_rejections_and_stale_outcomes_are_counted_and_traced() {
    let metrics = Metrics::default();
    let events = Events::default();
    metrics::with_local_recorder(&metrics, || {
        with_events(&events, || {
            let clock = ManualClock::new();
            let breaker = CircuitBreaker::builder(
                BreakerConfig::consecutive_failures(1).with_open_duration(SEC),
            )
            .clock(clock.clone().into())
            .name("db")
            .build()
            .unwrap();
            let late = breaker.try_acquire().unwrap();
            breaker.try_acquire().unwrap().failure(); // trips
            assert!(breaker.try_acquire().is_err());
            assert!(breaker.try_acquire().is_err());
            late.failure(); // stale
            clock.advance(SEC);
            breaker.try_acquire().unwrap().success(); // probe closes
            assert_eq!(breaker.state(), State::Closed);
        });
    });

    let transitions = |to: &str, reason: &str| {
        metrics.counter(&format!(
            "staunch_breaker_transitions_total{{breaker=db,reason={reason},to={to}}}"
        ))
    };
    assert_eq!(transitions("open", "tripped"), 1);
    assert_eq!(transitions("half_open", "open_elapsed"), 1);
    assert_eq!(transitions("closed", "probes_succeeded"), 1);
    assert_eq!(
        metrics.counter("staunch_breaker_rejected_total{breaker=db}"),
        2
    );
    assert_eq!(
        metrics.counter("staunch_breaker_stale_outcomes_total{breaker=db}"),
        1
    );
    assert_eq!(
        metrics.gauge("staunch_breaker_state{breaker=db}"),
        Some(0.0)
    );

    let events = events.0.lock().unwrap().clone();
    let changes: Vec<_> = events
        .iter()
        .filter(|e| e.contains("state changed"))
        .collect();
    assert_eq!(changes.len(), 3, "{events:#?}");
    assert!(
        changes[0].contains("breaker=db") && changes[0].contains("to=open"),
        "{changes:?}"
    );
    assert!(
        events.iter().any(|e| e.contains("stale outcome")),
        "{events:#?}"
    );
}

/// Runs `f` on a breaker named `name` on a manual clock, capturing its metrics and events.
fn observed(
    name: &'static str,
    config: BreakerConfig,
    f: impl FnOnce(&CircuitBreaker, &ManualClock),
) -> (Metrics, Vec<String>) {
    let metrics = Metrics::default();
    let events = Events::default();
    metrics::with_local_recorder(&metrics, || {
        with_events(&events, || {
            let clock = ManualClock::new();
            let breaker = CircuitBreaker::builder(config)
                .clock(clock.clone().into())
                .name(name)
                .build()
                .unwrap();
            f(&breaker, &clock);
        });
    });
    let events = events.0.lock().unwrap().clone();
    (metrics, events)
}

/// The transitions counted for breaker `name` to `to` for `reason`.
fn transitions(metrics: &Metrics, name: &str, to: &str, reason: &str) -> u64 {
    metrics.counter(&format!(
        "staunch_breaker_transitions_total{{breaker={name},reason={reason},to={to}}}"
    ))
}

/// Defect 1 of issue 15: a manual transition to the current state is no state change, so it
/// counts no transition, sets no gauge and traces no event.
#[test]
fn a_manual_transition_to_the_current_state_is_neither_counted_nor_traced() {
    let config = BreakerConfig::consecutive_failures(1);
    let (metrics, events) = observed("idle", config, |breaker, _| {
        breaker.reset();
        breaker.force_open();
        breaker.force_open();
    });
    assert_eq!(transitions(&metrics, "idle", "closed", "manual"), 0);
    assert_eq!(transitions(&metrics, "idle", "forced_open", "manual"), 1);
    let changes = events
        .iter()
        .filter(|e| e.contains("state changed"))
        .count();
    assert_eq!(changes, 1, "{events:#?}");
}

/// The half-open maximum wait re-opens with its own reason; disabling sets the gauge to 5; a
/// new period of a count-reset interval is no transition.
#[test]
fn a_half_open_timeout_a_disable_and_a_new_period_are_told_apart() {
    let config = BreakerConfig::consecutive_failures(1)
        .with_open_duration(SEC)
        .with_half_open_max_wait(SEC)
        .with_count_reset_interval(SEC);
    let (metrics, events) = observed("wait", config, |breaker, clock| {
        clock.advance(SEC); // a new period at the next call
        breaker.try_acquire().unwrap().failure(); // trips
        clock.advance(SEC);
        let _probe = breaker.try_acquire().unwrap();
        clock.advance(SEC);
        assert!(breaker.try_acquire().is_err()); // the wait is over: open again
        breaker.disable();
    });
    assert_eq!(transitions(&metrics, "wait", "open", "tripped"), 1);
    assert_eq!(
        transitions(&metrics, "wait", "open", "half_open_timed_out"),
        1
    );
    assert_eq!(transitions(&metrics, "wait", "disabled", "manual"), 1);
    assert_eq!(transitions(&metrics, "wait", "closed", "manual"), 0);
    assert_eq!(
        metrics.gauge("staunch_breaker_state{breaker=wait}"),
        Some(5.0)
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("reason=half_open_timed_out") && e.contains("to=open")),
        "{events:#?}"
    );
}
