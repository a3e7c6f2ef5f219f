//! Telemetry: the `tracing` events and `metrics` counters of a retry, captured by a thread-local
//! recorder and subscriber (no globals, so tests do not interfere).
#![cfg(all(feature = "tracing", feature = "metrics"))]

use std::time::Duration;

use staunch::backoff::{Backoff, Jitter};
use staunch::retry::{BudgetConfig, RetryBudget};
use staunch::{ManualClock, Retry, RetryConfig};

#[path = "support/telemetry.rs"]
mod capture;
use capture::{Events, Metrics, with_events};

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
fn observe(f: impl FnOnce()) -> (Metrics, Vec<String>) {
    let counters = Metrics::default();
    let events = Events::default();
    metrics::with_local_recorder(&counters, || {
        with_events(&events, f);
    });
    let events = events.0.lock().unwrap().clone();
    (counters, events)
}

#[test]
fn a_failing_call_reports_every_attempt_retry_and_its_stop() {
    let (counters, events) = observe(|| {
        let _ = policy(3).call_blocking(|| Err::<(), _>("down"));
    });
    assert_eq!(
        counters.counter("staunch_retry_attempts_total{policy=db}"),
        3
    );
    assert_eq!(
        counters.counter("staunch_retry_retries_total{policy=db}"),
        2
    );
    assert_eq!(
        counters.counter("staunch_retry_outcomes_total{outcome=exhausted,policy=db}"),
        1
    );
    assert_eq!(
        counters.counter("staunch_retry_outcomes_total{outcome=success,policy=db}"),
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
    assert_eq!(
        counters.counter("staunch_retry_attempts_total{policy=db}"),
        1
    );
    assert_eq!(
        counters.counter("staunch_retry_outcomes_total{outcome=success,policy=db}"),
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
        counters.counter("staunch_retry_suppressed_total{policy=db,reason=budget}"),
        1
    );
    assert_eq!(
        counters.counter("staunch_retry_outcomes_total{outcome=budget,policy=db}"),
        1
    );
    assert!(
        events.iter().any(|e| e.contains("reason=budget")),
        "{events:#?}"
    );
}

#[test]
fn attempt_and_call_durations_are_histograms_in_seconds_per_outcome() {
    let clock = ManualClock::new();
    let (metrics, _) = observe(|| {
        let retry = policy(3).with_clock(clock.clone().into());
        // Two attempts of 30 ms that fail, then one of 20 ms that succeeds, 10 ms apart.
        let mut n = 0;
        retry
            .call_blocking(|| {
                n += 1;
                clock.advance(Duration::from_millis(if n < 3 { 30 } else { 20 }));
                if n < 3 { Err("busy") } else { Ok(()) }
            })
            .unwrap();
        // And a call that fails at once, permanently.
        let _ = policy(3)
            .with_clock(clock.clone().into())
            .retry_if(|_: &&str| false)
            .call_blocking(|| {
                clock.advance(Duration::from_millis(5));
                Err::<(), _>("bad request")
            });
    });
    assert_eq!(
        metrics.histogram("staunch_retry_attempt_duration_seconds{outcome=transient,policy=db}"),
        [0.03, 0.03]
    );
    assert_eq!(
        metrics.histogram("staunch_retry_attempt_duration_seconds{outcome=success,policy=db}"),
        [0.02]
    );
    assert_eq!(
        metrics.histogram("staunch_retry_attempt_duration_seconds{outcome=permanent,policy=db}"),
        [0.005]
    );
    assert_eq!(
        metrics.histogram("staunch_retry_call_duration_seconds{outcome=success,policy=db}"),
        [0.1]
    );
    assert_eq!(
        metrics.histogram("staunch_retry_call_duration_seconds{outcome=permanent,policy=db}"),
        [0.005]
    );
}

#[test]
fn an_owned_name_labels_everything_the_policy_reports() {
    let tenant = 7;
    let (metrics, events) = observe(|| {
        let _ = policy(2)
            .with_name(format!("tenant-{tenant}"))
            .call_blocking(|| Err::<(), _>("down"));
    });
    assert_eq!(
        metrics.counter("staunch_retry_attempts_total{policy=tenant-7}"),
        2
    );
    assert!(
        events.iter().all(|e| e.contains("policy=tenant-7")),
        "{events:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_fallback_counter_carries_the_policy_label() {
    use staunch::Pipeline;
    use staunch::fallback::Fallback;

    let counters = Metrics::default();
    let _guard = metrics::set_default_local_recorder(&counters);
    // Standalone, under its own name.
    let fallback = Fallback::value(1).with_name("cache");
    let value = fallback
        .call(policy(2).call(|| async { Err::<i32, _>("down") }))
        .await;
    assert_eq!(value.unwrap(), 1);
    // In a pipeline, under the pipeline's name, whichever was set first.
    let pipeline = Pipeline::new()
        .retry(policy(2))
        .fallback_value(2)
        .with_name("pricing");
    assert_eq!(
        pipeline
            .call(|| async { Err::<i32, _>("down") })
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        counters.counter("staunch_fallback_used_total{policy=cache,reason=exhausted}"),
        1
    );
    assert_eq!(
        counters.counter("staunch_fallback_used_total{policy=pricing,reason=exhausted}"),
        1
    );
    assert_eq!(
        counters.counter("staunch_retry_attempts_total{policy=pricing}"),
        2
    );
    assert_eq!(
        counters.counter("staunch_retry_attempts_total{policy=db}"),
        2,
        "only the standalone call's"
    );
}
