//! What staunch reports: `tracing` events (feature `tracing`) and `metrics` counters, gauges and
//! histograms (feature `metrics`), each labelled with the name of the policy that reports it.
//! Every reporting function compiles to nothing when its feature is off.
//!
//! # Names
//!
//! Every policy has a [`Name`] (`"default"` unless set): [`Retry::with_name`](crate::Retry::with_name),
//! [`Builder::name`](crate::breaker::Builder::name) for a breaker,
//! [`Pipeline::with_name`](crate::Pipeline::with_name) and
//! [`Fallback::with_name`](crate::fallback::Fallback::with_name). A name is a `&'static str` or an
//! owned string (anything `Into<Cow<'static, str>>`), so a breaker per host read from a
//! configuration file can be labelled with its host without leaking memory. An owned name is
//! shared, not copied: cloning a policy or reporting under its name never allocates.
//!
//! A pipeline reports its retry loop and its fallback under its own name; its breaker reports
//! under the breaker's name, since one breaker may serve several pipelines.
//!
//! # Metrics
//!
//! Every metric has a `policy` label, the reporting policy's name. Durations are histograms in
//! seconds.
//!
//! | metric | kind | labels | recorded |
//! |---|---|---|---|
//! | `staunch_retry_attempts_total` | counter | `policy` | when an attempt starts |
//! | `staunch_retry_retries_total` | counter | `policy` | when a retry is scheduled |
//! | `staunch_retry_suppressed_total` | counter | `policy`, `reason` | when a retry that would have run is not made: `budget`, `deadline`, `max_duration`, `retry_after_too_long` |
//! | `staunch_retry_outcomes_total` | counter | `policy`, `outcome` | when a call ends: `success` or its [stop reason](crate::StopReason::as_str) |
//! | `staunch_retry_attempt_duration_seconds` | histogram | `policy`, `outcome` | when an attempt that reached the dependency ends: its [class](crate::classify::Class::as_str) (`success`, `transient`, `retry_after`, `permanent`, `ignored`) |
//! | `staunch_retry_call_duration_seconds` | histogram | `policy`, `outcome` | when a call ends, from its start: `success` or its stop reason |
//! | `staunch_fallback_used_total` | counter | `policy`, `reason` | when a fallback runs, by the stop reason it covered |
//! | `staunch_breaker_transitions_total` | counter | `policy`, `to`, `reason` | on every state change ([`State::as_str`](crate::breaker::State::as_str), [`Reason::as_str`](crate::breaker::Reason::as_str)) |
//! | `staunch_breaker_state` | gauge | `policy` | on every state change: 0 closed, 1 open, 2 half-open, 3 forced open, 4 forced closed |
//! | `staunch_breaker_rejected_total` | counter | `policy` | when a breaker refuses a call |
//! | `staunch_breaker_stale_outcomes_total` | counter | `policy` | when an outcome arrives after the state it was admitted in |
//! | `staunch_hedge_sent_total` | counter | `policy`, `trigger` | when a hedge is sent: on the delay, or at once after a transient failure |
//! | `staunch_hedge_won_total` | counter | `policy` | when a hedge's answer wins |
//! | `staunch_hedge_refused_total` | counter | `policy`, `reason` | when a hedge is not sent (budget, deadline) or is refused before reaching the dependency |
//! | `staunch_chaos_injected_total` | counter | `policy`, `kind` | per injected fault (feature `chaos`): `error`, `delay` or `result`; a delayed substitute counts as both |
//!
//! The retry and pipeline histograms need every attempt's start, so with the `metrics` feature
//! every call reads the clock when it starts and when each attempt ends (two readings for a
//! call whose first attempt succeeds, where it reads none without the feature). Attempts an open
//! circuit refused, or that had no time left to start, are not timed: they did not reach the
//! dependency. Keys are built once per policy and thread for the series every call updates, so
//! a successful call allocates nothing.
//!
//! ## Conventions
//!
//! OpenTelemetry's semantic conventions define no metrics for retries, breakers or fallbacks,
//! so these names, and the `policy`, `outcome`, `reason` and `to` labels, are staunch's own.
//! Where a convention applies, it is followed: durations are histograms in seconds (OTel's
//! metric guidelines), and the names are the Prometheus spelling OTel's Prometheus exporter
//! gives such instruments (`staunch.retry.attempt.duration` in seconds becomes
//! `staunch_retry_attempt_duration_seconds`; a counter ends in `_total`).
//!
//! OTel's `http.request.resend_count` (stable, on HTTP client spans: "the ordinal number of
//! request resending attempt") belongs to the span of the HTTP client that sends the request,
//! which staunch does not own. The [`IdempotencyGate`](crate::http::IdempotencyGate) (features
//! `http` and `tower`) hands the number over instead: each copy of a request it makes for a retry
//! carries a [`ResendCount`](crate::http::ResendCount) extension, 1 on the first resend, for the
//! client's instrumentation to put on that span.
//!
//! # Events
//!
//! | target | level | message | fields |
//! |---|---|---|---|
//! | `staunch::retry` | debug | `attempt failed; retrying` | `policy`, `attempt`, `delay`, `class`, `duration` (if measured) |
//! | `staunch::retry` | debug | `succeeded after retrying` | `policy`, `attempts` |
//! | `staunch::retry` | debug | `stopped retrying` | `policy`, `attempts`, `reason` |
//! | `staunch::fallback` | debug | `call failed; using the fallback` | `policy`, `reason` |
//! | `staunch::breaker::events` | warn (to open, or a lease expired), info | `circuit breaker state changed` | `breaker`, `from`, `to`, `generation`, `reason` |
//! | `staunch::breaker::events` | debug | `stale outcome ignored: ...` | `breaker`, `generation` |
//! | `staunch::hedge` | debug | `hedge sent`, `hedge won`, `hedge refused`, `hedged call failed` | `policy`, `attempt`, `trigger` / `reason` / `attempts` |
//! | `staunch::chaos` | debug | `injected a fault` | `chaos`, `kind`, `delay` |
//! | `staunch::http` | debug | `ignoring a malformed deadline header` | `header`, `value` |
//! | `staunch::http` | debug | `the server's pushback asks not to retry ...` | `header`, `value` |
//!
//! A first attempt that succeeds reports no event. Header values in events are cut to 64 bytes
//! and escaped: they are untrusted input.
//!
//! # Hooks
//!
//! Without `tracing`, code can follow retries with a hook: [`Retry::on_retry`](crate::Retry::on_retry)
//! and [`Pipeline::on_retry`](crate::Pipeline::on_retry), called with a
//! [`RetryEvent`](crate::retry::RetryEvent) for each retry, outside any lock; hedges have
//! [`Hedge::on_hedge`](crate::hedge::Hedge::on_hedge) with a [`HedgeEvent`](crate::hedge::HedgeEvent). A breaker's state
//! changes have [`Builder::on_state_change`](crate::breaker::Builder::on_state_change); a budget's
//! state is [a snapshot](crate::retry::RetryBudget::snapshot) away.

// With only one of the two features on, some arguments go unused.
#![cfg_attr(
    not(all(feature = "tracing", feature = "metrics")),
    allow(unused_variables)
)]

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "metrics")]
use crate::classify::Class;
use crate::{AttemptRecord, Clock, StopReason};

/// The name a policy reports under, in `tracing` fields and `metrics` labels: a `&'static str`
/// or an owned string, shared.
///
/// Built from anything `Into<Cow<'static, str>>` (a `&'static str`, a `String`, a `Cow`), or
/// from an `Arc<str>`. An owned name is allocated once, when it is set, and shared from then on:
/// cloning a policy, or a [`StateChange`](crate::breaker::StateChange) carrying the name, never
/// allocates, and nothing is leaked to make it `'static`.
///
/// # Examples
///
/// ```
/// use staunch::breaker::{BreakerConfig, CircuitBreaker};
///
/// // One breaker per upstream host, named after it.
/// let host = String::from("inventory.internal:8443");
/// let breaker = CircuitBreaker::builder(BreakerConfig::consecutive_failures(5))
///     .name(host)
///     .build()?;
/// assert_eq!(breaker.name(), "inventory.internal:8443");
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Name(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Name {
    /// The name `"default"`, every policy's until one is set.
    pub const DEFAULT: Self = Self::from_static("default");

    /// A name from a string literal.
    pub const fn from_static(name: &'static str) -> Self {
        Self(Repr::Static(name))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(name) => name,
            Repr::Shared(name) => name,
        }
    }

    /// The name as a `metrics` label value, without copying it.
    #[cfg(feature = "metrics")]
    pub(crate) fn label(&self) -> metrics::SharedString {
        match &self.0 {
            Repr::Static(name) => metrics::SharedString::const_str(name),
            Repr::Shared(name) => metrics::SharedString::from(Arc::clone(name)),
        }
    }
}

impl Default for Name {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl From<&'static str> for Name {
    fn from(name: &'static str) -> Self {
        Self::from_static(name)
    }
}

impl From<String> for Name {
    fn from(name: String) -> Self {
        Self(Repr::Shared(name.into()))
    }
}

impl From<Cow<'static, str>> for Name {
    fn from(name: Cow<'static, str>) -> Self {
        match name {
            Cow::Borrowed(name) => Self::from_static(name),
            Cow::Owned(name) => name.into(),
        }
    }
}

impl From<Arc<str>> for Name {
    fn from(name: Arc<str>) -> Self {
        Self(Repr::Shared(name))
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.as_str()
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[inline]
pub(crate) fn retry_attempt(policy: &Name) {
    #[cfg(feature = "metrics")]
    keys::increment(policy, |keys| &keys.attempts);
}

/// A failed attempt has ended; `record` says how it went.
#[inline]
pub(crate) fn attempt_failed(policy: &Name, record: &AttemptRecord, reached: bool) {
    #[cfg(feature = "metrics")]
    if let (Some(duration), true) = (record.duration(), reached) {
        let seconds = duration.as_secs_f64();
        // The classes a call that goes on to succeed sees have cached keys: a retried call
        // that succeeds allocates nothing.
        match record.class() {
            Class::Transient => keys::record(policy, |keys| &keys.attempt_transients, seconds),
            Class::RetryAfter(_) => keys::record(policy, |keys| &keys.attempt_hinted, seconds),
            class => metrics::histogram!(
                "staunch_retry_attempt_duration_seconds",
                "policy" => policy.label(),
                "outcome" => class.as_str()
            )
            .record(seconds),
        }
    }
}

#[inline]
pub(crate) fn retry_scheduled(policy: &Name, record: &AttemptRecord, delay: Duration) {
    #[cfg(feature = "tracing")]
    {
        let (attempt, class) = (record.number(), record.class());
        match record.duration() {
            Some(duration) => {
                tracing::debug!(target: "staunch::retry", policy = policy.as_str(), attempt, ?delay, ?class, ?duration, "attempt failed; retrying")
            }
            None => {
                tracing::debug!(target: "staunch::retry", policy = policy.as_str(), attempt, ?delay, ?class, "attempt failed; retrying")
            }
        }
    }
    #[cfg(feature = "metrics")]
    keys::increment(policy, |keys| &keys.retries);
}

/// A call's last attempt succeeded. With `metrics`, `attempt_start` and `start` (when known)
/// time the attempt and the call: the one place this reads the clock.
#[inline]
pub(crate) fn retry_succeeded(
    policy: &Name,
    attempts: u32,
    attempt_start: Option<Instant>,
    start: Option<Instant>,
    clock: &Clock,
) {
    #[cfg(feature = "tracing")]
    if attempts > 1 {
        tracing::debug!(target: "staunch::retry", policy = policy.as_str(), attempts, "succeeded after retrying");
    }
    #[cfg(feature = "metrics")]
    {
        keys::increment(policy, |keys| &keys.successes);
        if attempt_start.is_some() || start.is_some() {
            let now = clock.now();
            if let Some(attempt_start) = attempt_start {
                let seconds = now.saturating_duration_since(attempt_start).as_secs_f64();
                keys::record(policy, |keys| &keys.attempt_successes, seconds);
            }
            if let Some(start) = start {
                let seconds = now.saturating_duration_since(start).as_secs_f64();
                keys::record(policy, |keys| &keys.call_successes, seconds);
            }
        }
    }
}

/// A call has stopped with `reason`; with `metrics`, `start` (when known) times it.
#[inline]
pub(crate) fn retry_stopped(
    policy: &Name,
    reason: StopReason,
    attempts: u32,
    start: Option<Instant>,
    clock: &Clock,
) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "staunch::retry", policy = policy.as_str(), attempts, reason = reason.as_str(), "stopped retrying");
    #[cfg(feature = "metrics")]
    {
        // Before the first attempt nothing was suppressed: the call never ran.
        let suppressed = matches!(
            reason,
            StopReason::Budget
                | StopReason::Deadline
                | StopReason::RetryAfterTooLong
                | StopReason::MaxDuration
        );
        if suppressed && attempts > 0 {
            metrics::counter!("staunch_retry_suppressed_total", "policy" => policy.label(), "reason" => reason.as_str())
                .increment(1);
        }
        metrics::counter!("staunch_retry_outcomes_total", "policy" => policy.label(), "outcome" => reason.as_str())
            .increment(1);
        if let Some(start) = start {
            metrics::histogram!("staunch_retry_call_duration_seconds", "policy" => policy.label(), "outcome" => reason.as_str())
                .record(clock.now().saturating_duration_since(start).as_secs_f64());
        }
    }
}

#[inline]
pub(crate) fn fallback_used(policy: &Name, reason: StopReason) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "staunch::fallback", policy = policy.as_str(), reason = reason.as_str(), "call failed; using the fallback");
    #[cfg(feature = "metrics")]
    metrics::counter!("staunch_fallback_used_total", "policy" => policy.label(), "reason" => reason.as_str())
        .increment(1);
}

/// A hedge sent, won or refused. Hedges are rare (a few percent of calls), so the counters are
/// looked up per event rather than cached.
#[cfg(feature = "tokio")]
#[cold]
pub(crate) fn hedge_event(event: &crate::hedge::HedgeEvent) {
    use crate::hedge::HedgeEventKind;
    let policy = event.policy;
    match event.kind {
        HedgeEventKind::Sent { trigger } => {
            #[cfg(feature = "tracing")]
            tracing::debug!(target: "staunch::hedge", policy, attempt = event.attempt, trigger = trigger.as_str(), "hedge sent");
            #[cfg(feature = "metrics")]
            metrics::counter!("staunch_hedge_sent_total", "policy" => policy, "trigger" => trigger.as_str())
                .increment(1);
        }
        HedgeEventKind::Won => {
            #[cfg(feature = "tracing")]
            tracing::debug!(target: "staunch::hedge", policy, attempt = event.attempt, "hedge won");
            #[cfg(feature = "metrics")]
            metrics::counter!("staunch_hedge_won_total", "policy" => policy).increment(1);
        }
        HedgeEventKind::Refused(reason) => {
            #[cfg(feature = "tracing")]
            tracing::debug!(target: "staunch::hedge", policy, attempt = event.attempt, reason = reason.as_str(), "hedge refused");
            #[cfg(feature = "metrics")]
            metrics::counter!("staunch_hedge_refused_total", "policy" => policy, "reason" => reason.as_str())
                .increment(1);
        }
    }
}

/// A hedged call ended on a failure.
#[cfg(feature = "tokio")]
#[cold]
pub(crate) fn hedge_stopped(policy: &'static str, reason: StopReason, attempts: u32) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "staunch::hedge", policy, attempts, reason = reason.as_str(), "hedged call failed");
}

/// The metadata `metrics::counter!` and `metrics::histogram!` give the metrics of this module.
#[cfg(feature = "metrics")]
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The keys of the series that every call or retry updates, built once per policy name and
/// thread. `metrics::counter!` builds a key's labels into a `Vec` on every update when a label's
/// value is not a literal, as the policy name is: two heap allocations per successful call.
/// The recorder still sees the same key and metadata as through the macros.
#[cfg(feature = "metrics")]
mod keys {
    use std::cell::RefCell;
    use std::rc::Rc;

    use metrics::{Key, Label};

    use super::Name;

    /// Policies whose keys a thread keeps; past that, keys are built per update.
    const CAPACITY: usize = 16;

    pub(super) struct PolicyKeys {
        policy: Name,
        pub(super) attempts: Key,
        pub(super) retries: Key,
        pub(super) successes: Key,
        pub(super) attempt_successes: Key,
        pub(super) attempt_transients: Key,
        pub(super) attempt_hinted: Key,
        pub(super) call_successes: Key,
    }

    impl PolicyKeys {
        fn new(policy: &Name) -> Self {
            let key = |name: &'static str, outcome: Option<&'static str>| {
                let mut labels = vec![Label::new("policy", policy.label())];
                labels.extend(outcome.map(|outcome| Label::new("outcome", outcome)));
                Key::from_parts(name, labels)
            };
            Self {
                policy: policy.clone(),
                attempts: key("staunch_retry_attempts_total", None),
                retries: key("staunch_retry_retries_total", None),
                successes: key("staunch_retry_outcomes_total", Some("success")),
                attempt_successes: key("staunch_retry_attempt_duration_seconds", Some("success")),
                attempt_transients: key(
                    "staunch_retry_attempt_duration_seconds",
                    Some("transient"),
                ),
                attempt_hinted: key(
                    "staunch_retry_attempt_duration_seconds",
                    Some("retry_after"),
                ),
                call_successes: key("staunch_retry_call_duration_seconds", Some("success")),
            }
        }
    }

    thread_local! {
        static KEYS: RefCell<Vec<Rc<PolicyKeys>>> = const { RefCell::new(Vec::new()) };
    }

    /// `policy`'s keys, from this thread's cache.
    fn keys_of(policy: &Name) -> Rc<PolicyKeys> {
        KEYS.try_with(|cache| {
            // No borrow is held while the recorder runs, so a recorder that retries through
            // staunch itself cannot make this re-entrant borrow fail.
            let mut cache = cache.try_borrow_mut().ok()?;
            if let Some(keys) = cache.iter().find(|keys| keys.policy == *policy) {
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
        .unwrap_or_else(|| Rc::new(PolicyKeys::new(policy)))
    }

    /// Increments the counter `pick` chooses among `policy`'s keys.
    pub(super) fn increment(policy: &Name, pick: fn(&PolicyKeys) -> &Key) {
        let keys = keys_of(policy);
        let key = pick(&keys);
        metrics::with_recorder(|recorder| recorder.register_counter(key, &super::METADATA))
            .increment(1);
    }

    /// Records `value` in the histogram `pick` chooses among `policy`'s keys.
    pub(super) fn record(policy: &Name, pick: fn(&PolicyKeys) -> &Key, value: f64) {
        let keys = keys_of(policy);
        let key = pick(&keys);
        metrics::with_recorder(|recorder| recorder.register_histogram(key, &super::METADATA))
            .record(value);
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::Name;
    use crate::classify::Class;
    use crate::{AttemptRecord, Clock};

    /// A registration: the kind, the key, and the metadata's target, level and module path.
    type Registration = (&'static str, Key, String, metrics::Level, Option<String>);

    /// Records every counter and histogram registration.
    #[derive(Default)]
    struct Registrations(Mutex<Vec<Registration>>);

    impl Registrations {
        fn push(&self, kind: &'static str, key: &Key, metadata: &Metadata<'_>) {
            self.0.lock().unwrap().push((
                kind,
                key.clone(),
                metadata.target().to_owned(),
                *metadata.level(),
                metadata.module_path().map(str::to_owned),
            ));
        }
    }

    impl Recorder for Registrations {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
            self.push("counter", key, metadata);
            Counter::noop()
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
            self.push("histogram", key, metadata);
            Histogram::noop()
        }
    }

    #[test]
    fn cached_keys_register_as_the_macros_do() {
        let (cached, by_macro) = (Registrations::default(), Registrations::default());
        let clock = Clock::system();
        let start = Some(Instant::now());
        let owned = || Name::from(String::from("search"));
        for policy in [
            Name::from("payments"),
            owned(),
            Name::from("payments"),
            owned(),
        ] {
            metrics::with_local_recorder(&cached, || {
                super::retry_attempt(&policy);
                let record = AttemptRecord::new(1, None, Class::Transient);
                super::retry_scheduled(&policy, &record, Duration::ZERO);
                super::retry_succeeded(&policy, 2, start, start, &clock);
            });
            let label = policy.to_string();
            metrics::with_local_recorder(&by_macro, || {
                metrics::counter!("staunch_retry_attempts_total", "policy" => label.clone())
                    .increment(1);
                metrics::counter!("staunch_retry_retries_total", "policy" => label.clone())
                    .increment(1);
                metrics::counter!("staunch_retry_outcomes_total", "policy" => label.clone(), "outcome" => "success")
                    .increment(1);
                metrics::histogram!("staunch_retry_attempt_duration_seconds", "policy" => label.clone(), "outcome" => "success")
                    .record(0.0);
                metrics::histogram!("staunch_retry_call_duration_seconds", "policy" => label, "outcome" => "success")
                    .record(0.0);
            });
        }
        let cached = cached.0.into_inner().unwrap();
        let by_macro = by_macro.0.into_inner().unwrap();
        assert_eq!(cached.len(), 20);
        let keys_and_levels = |r: &[Registration]| -> Vec<(&str, Key, metrics::Level)> {
            r.iter()
                .map(|(kind, key, _, level, _)| (*kind, key.clone(), *level))
                .collect()
        };
        assert_eq!(keys_and_levels(&cached), keys_and_levels(&by_macro));
        // The macro's metadata names the module it is written in: it was this one.
        for (_, _, target, _, module_path) in &cached {
            assert_eq!(
                (target.as_str(), module_path.as_deref()),
                ("staunch::telemetry", Some("staunch::telemetry"))
            );
        }
    }

    #[test]
    fn names_compare_and_hash_as_their_text() {
        use std::collections::HashSet;

        let owned = Name::from(String::from("db"));
        assert_eq!(owned, Name::from("db"));
        assert_eq!(owned, "db");
        assert_eq!(format!("{owned} {owned:?}"), "db \"db\"");
        let set: HashSet<Name> = [owned.clone(), Name::from("db")].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert!(set.contains("db"), "looked up by &str through Borrow");
        assert_eq!(Name::default(), "default");
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
