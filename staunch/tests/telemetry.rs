//! Telemetry: the `tracing` events and `metrics` counters of a retry, captured by a thread-local
//! recorder and subscriber (no globals, so tests do not interfere).
#![cfg(all(feature = "tracing", feature = "metrics"))]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use staunch::backoff::{Backoff, Jitter};
use staunch::retry::{BudgetConfig, RetryBudget};
use staunch::{ManualClock, Retry, RetryConfig};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};

/// Counters by name and sorted labels, e.g. `staunch_retry_outcomes_total{outcome=exhausted,policy=db}`.
#[derive(Debug, Default)]
struct Counters(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

impl Counters {
    fn get(&self, key: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let counter = self.0.lock().unwrap().entry(name).or_default().clone();
        Counter::from_arc(counter)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
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

fn policy(max_attempts: u32) -> Retry {
    Retry::new(
        RetryConfig::new()
            .with_max_attempts(max_attempts)
            .with_backoff(Backoff::constant(Duration::from_millis(10)).with_jitter(Jitter::None)),
    )
    .unwrap()
    .with_clock(ManualClock::new().into())
    .with_name("db")
}

/// Runs `f` with a fresh recorder and subscriber on this thread.
fn observe(f: impl FnOnce()) -> (Counters, Vec<String>) {
    let counters = Counters::default();
    let events = Events::default();
    metrics::with_local_recorder(&counters, || {
        tracing::subscriber::with_default(events.clone(), f);
    });
    let events = events.0.lock().unwrap().clone();
    (counters, events)
}

#[test]
fn a_failing_call_reports_every_attempt_retry_and_its_stop() {
    let (counters, events) = observe(|| {
        let _ = policy(3).call_blocking(|| Err::<(), _>("down"));
    });
    assert_eq!(counters.get("staunch_retry_attempts_total{policy=db}"), 3);
    assert_eq!(counters.get("staunch_retry_retries_total{policy=db}"), 2);
    assert_eq!(
        counters.get("staunch_retry_outcomes_total{outcome=exhausted,policy=db}"),
        1
    );
    assert_eq!(
        counters.get("staunch_retry_outcomes_total{outcome=success,policy=db}"),
        0
    );
    let retrying = events.iter().filter(|e| e.contains("; retrying")).count();
    assert_eq!(retrying, 2, "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e.contains("stopped retrying") && e.contains("reason=exhausted")),
        "{events:#?}"
    );
}

#[test]
fn a_success_counts_one_attempt_and_one_success() {
    let (counters, events) = observe(|| {
        policy(3).call_blocking(|| Ok::<_, ()>(())).unwrap();
    });
    assert_eq!(counters.get("staunch_retry_attempts_total{policy=db}"), 1);
    assert_eq!(
        counters.get("staunch_retry_outcomes_total{outcome=success,policy=db}"),
        1
    );
    assert!(
        events.is_empty(),
        "a first-time success is not worth an event: {events:#?}"
    );
}

#[test]
fn a_retry_refused_by_the_budget_is_counted_as_suppressed() {
    let budget = RetryBudget::new(BudgetConfig::token_bucket(2, 1.0)).unwrap();
    let (counters, events) = observe(|| {
        let retry = policy(3).with_budget(budget);
        // 2 tokens: the first failure leaves 1, which is not more than half, so no retry.
        let _ = retry.call_blocking(|| Err::<(), _>("down"));
    });
    assert_eq!(
        counters.get("staunch_retry_suppressed_total{policy=db,reason=budget}"),
        1
    );
    assert_eq!(
        counters.get("staunch_retry_outcomes_total{outcome=budget,policy=db}"),
        1
    );
    assert!(
        events.iter().any(|e| e.contains("reason=budget")),
        "{events:#?}"
    );
}
