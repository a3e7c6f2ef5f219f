//! A thread-local `metrics` recorder and `tracing` subscriber that capture what the library
//! reports, for the telemetry tests (no globals, so tests do not interfere). Each test binary
//! uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};

/// Counters and gauges by name and sorted labels, e.g. `staunch_breaker_state{policy=db}`, and
/// histograms' samples the same way.
#[derive(Debug, Default)]
pub(crate) struct Metrics(
    Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    Mutex<BTreeMap<String, Arc<Samples>>>,
);

/// A histogram's samples, in order.
#[derive(Debug, Default)]
pub(crate) struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn name_of(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Metrics {
    fn slot(&self, key: &Key) -> Arc<AtomicU64> {
        self.0
            .lock()
            .unwrap()
            .entry(name_of(key))
            .or_default()
            .clone()
    }

    /// The samples recorded in a histogram.
    pub(crate) fn histogram(&self, key: &str) -> Vec<f64> {
        self.1
            .lock()
            .unwrap()
            .get(key)
            .map_or_else(Vec::new, |h| h.0.lock().unwrap().clone())
    }

    /// Every histogram's name and labels.
    pub(crate) fn histograms(&self) -> Vec<String> {
        self.1.lock().unwrap().keys().cloned().collect()
    }

    /// Every counter's and gauge's name and labels.
    pub(crate) fn counters(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }

    pub(crate) fn counter(&self, key: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub(crate) fn gauge(&self, key: &str) -> Option<f64> {
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

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let samples = self
            .1
            .lock()
            .unwrap()
            .entry(name_of(key))
            .or_default()
            .clone();
        Histogram::from_arc(samples)
    }
}

/// Runs `f` with `events` as this thread's subscriber.
///
/// tracing caches, per callsite and process-wide, whether any subscriber is interested. While
/// exactly one dispatcher is registered, a callsite's first registration asks the *registering
/// thread's* default (tokio-rs/tracing#3611): a sibling test's thread, with no subscriber, can
/// cache it as never, and this thread's events from it are then dropped. A second dispatcher
/// kept alive for the capture makes every registration ask all registered dispatchers, and the
/// rebuild re-asks the callsites registered before.
pub(crate) fn with_events<R>(events: &Events, f: impl FnOnce() -> R) -> R {
    let anchor = tracing::Dispatch::new(Events::default());
    let result = tracing::subscriber::with_default(events.clone(), || {
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    drop(anchor);
    result
}

/// Records every event's fields as `name=value` strings.
#[derive(Clone, Debug, Default)]
pub(crate) struct Events(pub(crate) Arc<Mutex<Vec<String>>>);

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
