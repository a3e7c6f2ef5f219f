//! `tracing` events and `metrics` counters. Every function compiles to nothing when its feature
//! is off.
//!
//! Metrics (label `policy` = the policy's name):
//! - `staunch_retry_attempts_total`: attempts started.
//! - `staunch_retry_retries_total`: retries scheduled.
//! - `staunch_retry_suppressed_total` (label `reason`): retries that would have run but for the
//!   budget, the deadline or an over-long Retry-After.
//! - `staunch_retry_outcomes_total` (label `outcome`): `success` or the stop reason.
//! - `staunch_fallback_used_total` (label `reason`): fallbacks run, by the failure they covered.

// With only one of the two features on, some arguments go unused.
#![cfg_attr(
    not(all(feature = "tracing", feature = "metrics")),
    allow(unused_variables)
)]

use std::time::Duration;

use crate::StopReason;
use crate::classify::Class;

#[inline]
pub(crate) fn retry_attempt(policy: &'static str) {
    #[cfg(feature = "metrics")]
    keys::increment(policy, |keys| &keys.attempts);
}

#[inline]
pub(crate) fn retry_scheduled(policy: &'static str, attempt: u32, delay: Duration, class: Class) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "staunch::retry", policy, attempt, ?delay, ?class, "attempt failed; retrying");
    #[cfg(feature = "metrics")]
    keys::increment(policy, |keys| &keys.retries);
}

#[inline]
pub(crate) fn retry_succeeded(policy: &'static str, attempts: u32) {
    #[cfg(feature = "tracing")]
    if attempts > 1 {
        tracing::debug!(target: "staunch::retry", policy, attempts, "succeeded after retrying");
    }
    #[cfg(feature = "metrics")]
    keys::increment(policy, |keys| &keys.successes);
}

#[inline]
pub(crate) fn retry_stopped(policy: &'static str, reason: StopReason, attempts: u32) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "staunch::retry", policy, attempts, reason = reason.as_str(), "stopped retrying");
    #[cfg(feature = "metrics")]
    {
        // Before the first attempt nothing was suppressed: the call never ran.
        let suppressed = matches!(
            reason,
            StopReason::Budget | StopReason::Deadline | StopReason::RetryAfterTooLong
        );
        if suppressed && attempts > 0 {
            metrics::counter!("staunch_retry_suppressed_total", "policy" => policy, "reason" => reason.as_str())
                .increment(1);
        }
        metrics::counter!("staunch_retry_outcomes_total", "policy" => policy, "outcome" => reason.as_str())
            .increment(1);
    }
}

#[inline]
pub(crate) fn fallback_used(reason: StopReason) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "staunch::fallback", reason = reason.as_str(), "call failed; using the fallback");
    #[cfg(feature = "metrics")]
    metrics::counter!("staunch_fallback_used_total", "reason" => reason.as_str()).increment(1);
}

/// The metadata `metrics::counter!` gives the counters of this module.
#[cfg(feature = "metrics")]
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The keys of the counters that every call or retry updates, built once per policy name and
/// thread. `metrics::counter!` builds a key's labels into a `Vec` on every update when a label's
/// value is not a literal, as the policy name is: two heap allocations per successful call.
/// The recorder still sees the same key and metadata as through the macro.
#[cfg(feature = "metrics")]
mod keys {
    use std::cell::RefCell;
    use std::rc::Rc;

    use metrics::{Key, Label};

    /// Policies whose keys a thread keeps; past that, keys are built per update.
    const CAPACITY: usize = 16;

    pub(super) struct PolicyKeys {
        policy: &'static str,
        pub(super) attempts: Key,
        pub(super) retries: Key,
        pub(super) successes: Key,
    }

    impl PolicyKeys {
        fn new(policy: &'static str) -> Self {
            let key = |name: &'static str, outcome: Option<&'static str>| {
                let mut labels = vec![Label::new("policy", policy)];
                labels.extend(outcome.map(|outcome| Label::new("outcome", outcome)));
                Key::from_parts(name, labels)
            };
            Self {
                policy,
                attempts: key("staunch_retry_attempts_total", None),
                retries: key("staunch_retry_retries_total", None),
                successes: key("staunch_retry_outcomes_total", Some("success")),
            }
        }
    }

    thread_local! {
        static KEYS: RefCell<Vec<Rc<PolicyKeys>>> = const { RefCell::new(Vec::new()) };
    }

    /// Increments the counter `pick` chooses among `policy`'s keys.
    pub(super) fn increment(policy: &'static str, pick: fn(&PolicyKeys) -> &Key) {
        let keys = KEYS
            .try_with(|cache| {
                // No borrow is held while the recorder runs, so a recorder that retries through
                // staunch itself cannot make this re-entrant borrow fail.
                let mut cache = cache.try_borrow_mut().ok()?;
                if let Some(keys) = cache.iter().find(|keys| keys.policy == policy) {
                    return Some(Rc::clone(keys));
                }
                let keys = Rc::new(PolicyKeys::new(policy));
                if cache.len() < CAPACITY {
                    cache.push(Rc::clone(&keys));
                }
                Some(keys)
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| Rc::new(PolicyKeys::new(policy)));
        let key = pick(&keys);
        metrics::with_recorder(|recorder| recorder.register_counter(key, &super::METADATA))
            .increment(1);
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use std::sync::Mutex;

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    /// A counter registration: the key, and the metadata's target, level and module path.
    type Registration = (Key, String, metrics::Level, Option<String>);

    /// Records every counter registration.
    #[derive(Default)]
    struct Registrations(Mutex<Vec<Registration>>);

    impl Recorder for Registrations {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
            self.0.lock().unwrap().push((
                key.clone(),
                metadata.target().to_owned(),
                *metadata.level(),
                metadata.module_path().map(str::to_owned),
            ));
            Counter::noop()
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn cached_keys_register_as_the_counter_macro_does() {
        let (cached, by_macro) = (Registrations::default(), Registrations::default());
        for policy in ["payments", "search", "payments"] {
            metrics::with_local_recorder(&cached, || {
                super::retry_attempt(policy);
                super::retry_scheduled(
                    policy,
                    1,
                    std::time::Duration::ZERO,
                    crate::classify::Class::Transient,
                );
                super::retry_succeeded(policy, 1);
            });
            metrics::with_local_recorder(&by_macro, || {
                metrics::counter!("staunch_retry_attempts_total", "policy" => policy).increment(1);
                metrics::counter!("staunch_retry_retries_total", "policy" => policy).increment(1);
                metrics::counter!("staunch_retry_outcomes_total", "policy" => policy, "outcome" => "success")
                    .increment(1);
            });
        }
        let cached = cached.0.into_inner().unwrap();
        let by_macro = by_macro.0.into_inner().unwrap();
        assert_eq!(cached.len(), 9);
        let keys_and_levels = |r: &[Registration]| -> Vec<(Key, metrics::Level)> {
            r.iter()
                .map(|(key, _, level, _)| (key.clone(), *level))
                .collect()
        };
        assert_eq!(keys_and_levels(&cached), keys_and_levels(&by_macro));
        // The macro's metadata names the module it is written in: it was this one.
        for (_, target, _, module_path) in &cached {
            assert_eq!(
                (target.as_str(), module_path.as_deref()),
                ("staunch::telemetry", Some("staunch::telemetry"))
            );
        }
    }
}

// ---- Overload protection (`limit`) ------------------------------------------------------------
//
// Metrics (label `limit` = the policy's name):
// - `staunch_limit_refused_total` (label `reason`): local refusals, by `Refusal::as_str`.
// - `staunch_limit_limit`, `staunch_limit_in_flight`, `staunch_limit_queued` (gauges): a
//   concurrency limit's current limit, calls in flight and callers queued.
// - `staunch_limit_throttle_probability` (gauge): adaptive throttling's rejection probability.

/// The metric handles of one overload policy, registered once at construction so that a call
/// costs no lookup and no allocation.
#[derive(Clone, Debug)]
pub(crate) struct LimitMetrics {
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    name: &'static str,
    #[cfg(feature = "metrics")]
    refused: [metrics::Counter; 5],
    #[cfg(feature = "metrics")]
    limit: metrics::Gauge,
    #[cfg(feature = "metrics")]
    in_flight: metrics::Gauge,
    #[cfg(feature = "metrics")]
    queued: metrics::Gauge,
    #[cfg(feature = "metrics")]
    probability: metrics::Gauge,
}

impl LimitMetrics {
    pub(crate) fn new(name: &'static str) -> Self {
        #[cfg(feature = "metrics")]
        let refused = crate::limit::Refusal::ALL.map(|reason| {
            metrics::counter!("staunch_limit_refused_total", "limit" => name, "reason" => reason.as_str())
        });
        Self {
            name,
            #[cfg(feature = "metrics")]
            refused,
            #[cfg(feature = "metrics")]
            limit: metrics::gauge!("staunch_limit_limit", "limit" => name),
            #[cfg(feature = "metrics")]
            in_flight: metrics::gauge!("staunch_limit_in_flight", "limit" => name),
            #[cfg(feature = "metrics")]
            queued: metrics::gauge!("staunch_limit_queued", "limit" => name),
            #[cfg(feature = "metrics")]
            probability: metrics::gauge!("staunch_limit_throttle_probability", "limit" => name),
        }
    }

    /// A local refusal, by reason.
    #[cold]
    pub(crate) fn refused(&self, reason: crate::limit::Refusal) {
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "staunch::limit", limit = self.name, reason = reason.as_str(), "refused locally");
        #[cfg(feature = "metrics")]
        self.refused[reason.index()].increment(1);
    }

    /// An adaptive limit moved.
    pub(crate) fn limit_changed(&self, from: u32, to: u32) {
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "staunch::limit", limit = self.name, from, to, "concurrency limit changed");
        #[cfg(feature = "metrics")]
        self.limit.set(f64::from(to));
    }

    /// Calls in flight and callers queued, after a change.
    #[inline]
    pub(crate) fn occupancy(&self, in_flight: u32, queued: u32) {
        #[cfg(feature = "metrics")]
        {
            self.in_flight.set(f64::from(in_flight));
            self.queued.set(f64::from(queued));
        }
    }

    /// Adaptive throttling's rejection probability, after a change of window.
    pub(crate) fn throttle_probability(&self, probability: f64) {
        #[cfg(feature = "metrics")]
        self.probability.set(probability);
    }
}
