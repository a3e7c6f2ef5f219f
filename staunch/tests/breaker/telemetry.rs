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
            .name(String::from("db")) // an owned name, as from a config file
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
            "staunch_breaker_transitions_total{{policy=db,reason={reason},to={to}}}"
        ))
    };
    assert_eq!(transitions("open", "tripped"), 1);
    assert_eq!(transitions("half_open", "open_elapsed"), 1);
    assert_eq!(transitions("closed", "probes_succeeded"), 1);
    assert_eq!(
        metrics.counter("staunch_breaker_rejected_total{policy=db}"),
        2
    );
    assert_eq!(
        metrics.counter("staunch_breaker_stale_outcomes_total{policy=db}"),
        1
    );
    assert_eq!(metrics.gauge("staunch_breaker_state{policy=db}"), Some(0.0));

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
