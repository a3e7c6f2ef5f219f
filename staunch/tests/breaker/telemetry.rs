//! The breaker's `tracing` events and `metrics` counters and gauge, captured by a thread-local
//! recorder and subscriber (no globals, so tests do not interfere).
#![cfg(all(feature = "tracing", feature = "metrics"))]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use staunch::ManualClock;
use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};

use crate::support::SEC;

/// Counters and gauges by name and sorted labels, e.g. `staunch_breaker_state{breaker=db}`.
#[derive(Debug, Default)]
struct Metrics(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

impl Metrics {
    fn slot(&self, key: &Key) -> Arc<AtomicU64> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.0.lock().unwrap().entry(name).or_default().clone()
    }

    fn counter(&self, key: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn gauge(&self, key: &str) -> Option<f64> {
        self.0
            .lock()
            .unwrap()
            .get(key)
            .map(|g| f64::from_bits(g.load(Ordering::Relaxed)))
    }
}

impl Recorder for Metrics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.slot(key))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Records every event's fields as `name=value` strings.
#[derive(Clone, Debug, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

struct Fields(Vec<String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push(format!("{}={value:?}", field.name()));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push(format!("{}={value}", field.name()));
    }
}

impl Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0.join(" "));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn transitions_rejections_and_stale_outcomes_are_counted_and_traced() {
    let metrics = Metrics::default();
    let events = Events::default();
    metrics::with_local_recorder(&metrics, || {
        tracing::subscriber::with_default(events.clone(), || {
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
