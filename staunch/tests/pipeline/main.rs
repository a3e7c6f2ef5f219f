//! The pipeline: one test per composition rule of DESIGN.md §1 "Composition", "Timeouts and
//! deadlines" and "Fallback", in paused time, counting the real calls to the dependency.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use staunch::backoff::{Backoff, Jitter};
use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
use staunch::classify::Class;
use staunch::deadline::AttemptTimeout;
use staunch::fallback::{Fallback, FallbackOn};
use staunch::retry::{BudgetConfig, RetryBudget};
use staunch::{Deadline, Error, Pipeline, StopReason};
use support::{Boom, Counter, fixed, ms};
use tokio::time::Instant;

fn breaker(failures: u32, open: Duration) -> CircuitBreaker {
    CircuitBreaker::new(
        BreakerConfig::consecutive_failures(failures)
            .with_open_duration(open)
            .with_open_backoff(Backoff::constant(open).with_jitter(Jitter::None)),
    )
    .unwrap()
}

async fn always_fails(calls: &Counter) -> Result<(), Boom> {
    Err(Boom(calls.bump()))
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_ends_the_retry_loop_at_once() {
    let calls = Counter::default();
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 5))
        .breaker(breaker(3, Duration::from_secs(30)));
    let start = Instant::now();
    let err = pipeline.call(|| always_fails(&calls)).await.unwrap_err();
    assert_eq!(
        calls.get(),
        3,
        "the dependency sees exactly the trip threshold"
    );
    assert_eq!(err.reason(), StopReason::CircuitOpen);
    assert_eq!(err.attempts(), 4, "three calls and the rejected fourth");
    assert!(
        err.circuit_open()
            .and_then(|open| open.retry_after())
            .is_some()
    );
    assert_eq!(
        start.elapsed(),
        ms(30),
        "three waits before the rejection, none after it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_cut_short_by_the_callers_deadline_does_not_count_against_the_dependency() {
    let cb = breaker(1, Duration::from_secs(30));
    let pipeline = Pipeline::new()
        .breaker(cb.clone())
        .attempt_timeout(AttemptTimeout::fixed(ms(500)))
        .unwrap();
    // The caller has 100 ms left: the attempt gets 100 ms, not its 500, and times out.
    let err = Deadline::after(ms(100))
        .scope(pipeline.call(std::future::pending::<Result<(), Boom>>))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Timeout);
    assert!(err.timeout().unwrap().is_deadline());
    assert_eq!(
        cb.state(),
        State::Closed,
        "the dependency was not given its time"
    );
    // A timeout at the attempt's own limit does count.
    let _ = pipeline
        .call(std::future::pending::<Result<(), Boom>>)
        .await;
    assert_eq!(cb.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_probe_beyond_max_retry_after_still_reports_the_open_circuit() {
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 5))
        .breaker(breaker(1, Duration::from_secs(120)))
        .wait_for_probe();
    let calls = Counter::default();
    let err = pipeline.call(|| always_fails(&calls)).await.unwrap_err();
    // The 120 s open period is past the default 60 s max_retry_after.
    assert_eq!((calls.get(), err.reason()), (1, StopReason::CircuitOpen));
}

#[tokio::test(start_paused = true)]
async fn the_default_fallback_covers_a_call_out_of_time_for_another_retry() {
    let calls = Counter::default();
    let pipeline = Pipeline::new()
        .retry(fixed(ms(300), 5))
        .fallback(|_: &Error<Boom>| async { 7u32 });
    let value = Deadline::after(ms(500))
        .scope(pipeline.call(|| {
            calls.bump();
            async { Err::<u32, _>(Boom(0)) }
        }))
        .await
        .unwrap();
    assert_eq!((value, calls.get()), (7, 2));
}

#[tokio::test(start_paused = true)]
async fn rejections_by_an_open_breaker_do_not_spend_the_retry_budget() {
    let budget = RetryBudget::new(BudgetConfig::token_bucket(10, 0.1)).unwrap();
    let cb = breaker(5, Duration::from_secs(30));
    let pipeline = Pipeline::new()
        .retry(fixed(ms(1), 3).with_budget(budget))
        .breaker(cb.clone());
    cb.force_open();
    for _ in 0..20 {
        let err = pipeline
            .call(|| async { Ok::<_, Boom>(()) })
            .await
            .unwrap_err();
        assert_eq!(err.reason(), StopReason::CircuitOpen);
    }
    cb.reset();
    // The dependency saw none of those calls: after the outage, retries are as available as
    // before it.
    let calls = Counter::default();
    let err = pipeline.call(|| always_fails(&calls)).await.unwrap_err();
    assert_eq!((calls.get(), err.reason()), (3, StopReason::Exhausted));
}

#[tokio::test(start_paused = true)]
async fn waiting_for_the_probe_is_opt_in_and_only_within_the_deadline() {
    // Fits: open for 1 s, deadline 5 s. The dependency recovers while the breaker is open.
    let calls = Counter::default();
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 5))
        .breaker(breaker(2, Duration::from_secs(1)))
        .wait_for_probe();
    let start = Instant::now();
    let value = Deadline::after(Duration::from_secs(5))
        .scope(pipeline.call(|| {
            let n = calls.bump();
            async move { if n <= 2 { Err(Boom(n)) } else { Ok(n) } }
        }))
        .await
        .unwrap();
    assert_eq!((value, calls.get()), (3, 3));
    assert_eq!(
        start.elapsed(),
        ms(10) + Duration::from_secs(1),
        "woke for the probe"
    );

    // Does not fit: open for 10 s, deadline 5 s: fail at once.
    let calls = Counter::default();
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 5))
        .breaker(breaker(2, Duration::from_secs(10)))
        .wait_for_probe();
    let start = Instant::now();
    let err = Deadline::after(Duration::from_secs(5))
        .scope(pipeline.call(|| always_fails(&calls)))
        .await
        .unwrap_err();
    assert_eq!((calls.get(), err.reason()), (2, StopReason::CircuitOpen));
    assert_eq!(
        start.elapsed(),
        ms(20),
        "rejected after the second wait; no wait for the probe"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_dependency_times_out_and_counts_as_failing() {
    let calls = Counter::default();
    let cb = breaker(2, Duration::from_secs(30));
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 5))
        .breaker(cb.clone())
        .attempt_timeout(AttemptTimeout::fixed(ms(100)))
        .unwrap();
    let start = Instant::now();
    let err = pipeline
        .call(|| {
            calls.bump();
            async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, Boom>(())
            }
        })
        .await
        .unwrap_err();
    assert_eq!(calls.get(), 2, "two timeouts trip the breaker");
    assert_eq!(cb.state(), State::Open);
    assert_eq!(err.reason(), StopReason::CircuitOpen);
    assert_eq!(start.elapsed(), ms(100 + 10 + 100 + 10));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_retried_by_default_and_reported_as_a_timeout() {
    let calls = Counter::default();
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 3))
        .attempt_timeout(AttemptTimeout::fixed(ms(50)))
        .unwrap();
    let err = pipeline
        .call(|| {
            calls.bump();
            std::future::pending::<Result<(), Boom>>()
        })
        .await
        .unwrap_err();
    assert_eq!(calls.get(), 3);
    assert_eq!(err.reason(), StopReason::Exhausted);
    assert!(err.is_timeout());
    assert_eq!(err.timeout().unwrap().timeout(), ms(50));
    assert!(
        err.inner().is_none(),
        "a timeout is not the operation's error"
    );
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.to_string().contains("timed out"), "{source}");

    // Without retry, one attempt, and the reason names the timeout.
    let single = Pipeline::new()
        .attempt_timeout(AttemptTimeout::fixed(ms(50)))
        .unwrap();
    let err = single
        .call(std::future::pending::<Result<(), Boom>>)
        .await
        .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::Timeout, 1));
}

#[tokio::test(start_paused = true)]
async fn the_canonical_checkout_falls_back_on_a_slow_price_within_its_deadline() {
    let pricing_calls = Counter::default();
    let pricing = Pipeline::new()
        .breaker(breaker(5, Duration::from_secs(30)))
        .attempt_timeout(AttemptTimeout::fixed(ms(500)))
        .unwrap()
        .fallback(|err: &Error<Boom>| {
            assert_eq!(err.reason(), StopReason::Timeout, "the fallback sees why");
            async { 999u32 }
        });
    let inventory = Pipeline::new()
        .attempt_timeout(AttemptTimeout::fixed(ms(200)))
        .unwrap();

    let start = Instant::now();
    let checkout = Deadline::after(Duration::from_secs(5)).scope(async {
        let price = pricing
            .call(|| {
                pricing_calls.bump();
                async {
                    tokio::time::sleep(ms(600)).await;
                    Ok::<u32, Boom>(1250)
                }
            })
            .await?;
        let stock = inventory
            .call(|| async {
                tokio::time::sleep(ms(20)).await;
                Ok::<u32, Boom>(7)
            })
            .await?;
        Ok::<_, Error<Boom>>((price, stock))
    });
    let (price, stock) = checkout.await.unwrap();
    assert_eq!((price, stock), (999, 7), "fallback price, real stock");
    assert_eq!(pricing_calls.get(), 1);
    assert_eq!(
        start.elapsed(),
        ms(520),
        "500 ms cap plus 20 ms of inventory, far from 5 s"
    );

    // Inventory has no fallback: its failure fails the request.
    let err = Deadline::after(Duration::from_secs(5))
        .scope(inventory.call(|| async {
            tokio::time::sleep(ms(300)).await;
            Ok::<u32, Boom>(7)
        }))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Timeout);
}

#[tokio::test(start_paused = true)]
async fn without_attempt_timeouts_a_hanging_call_still_ends_at_the_deadline() {
    let pipeline = Pipeline::new().timeout(Duration::from_secs(1));
    let start = Instant::now();
    let err = pipeline
        .call(std::future::pending::<Result<(), Boom>>)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Timeout);
    assert!(err.timeout().unwrap().is_deadline());
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_fractional_attempt_timeout_is_cut_from_what_remains() {
    let pipeline = Pipeline::new()
        .attempt_timeout(AttemptTimeout::fraction(0.25).with_min(ms(10)))
        .unwrap();
    let start = Instant::now();
    let err = Deadline::after(Duration::from_secs(2))
        .scope(pipeline.call(std::future::pending::<Result<(), Boom>>))
        .await
        .unwrap_err();
    assert_eq!(err.timeout().unwrap().timeout(), ms(500));
    assert_eq!(start.elapsed(), ms(500));
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_deadline_never_reaches_the_dependency() {
    let calls = Counter::default();
    let deadline = Deadline::after(ms(10));
    tokio::time::advance(ms(20)).await;
    let pipeline = Pipeline::new()
        .retry(fixed(ms(1), 3))
        .breaker(breaker(1, Duration::from_secs(1)))
        .attempt_timeout(AttemptTimeout::fixed(ms(100)))
        .unwrap();
    let err = deadline
        .scope(pipeline.call(|| always_fails(&calls)))
        .await
        .unwrap_err();
    assert_eq!(calls.get(), 0);
    assert_eq!((err.reason(), err.attempts()), (StopReason::Deadline, 0));
    assert_eq!(
        pipeline.get_breaker().unwrap().state(),
        State::Closed,
        "nothing recorded"
    );
}

#[tokio::test(start_paused = true)]
async fn the_overall_deadline_bounds_retry_sleeps() {
    let calls = Counter::default();
    let pipeline = Pipeline::new()
        .retry(fixed(ms(400), 10))
        .timeout(Duration::from_secs(1));
    let start = Instant::now();
    let err = pipeline.call(|| always_fails(&calls)).await.unwrap_err();
    assert_eq!((calls.get(), err.reason()), (3, StopReason::Deadline));
    assert_eq!(start.elapsed(), ms(800));
}

#[tokio::test(start_paused = true)]
async fn fallback_never_runs_for_success_nor_by_default_for_permanent_errors() {
    let used = Counter::default();
    let pipeline = Pipeline::new()
        .retry(fixed(ms(1), 3).retry_if(|e: &Boom| e.0 != 0))
        .fallback(|_: &Error<Boom>| {
            used.bump();
            async { 0u32 }
        });
    assert_eq!(
        pipeline
            .call(|| async { Ok::<u32, Boom>(5) })
            .await
            .unwrap(),
        5
    );
    let err = pipeline
        .call(|| async { Err::<u32, _>(Boom(0)) })
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Permanent);
    assert_eq!(used.get(), 0);
    // Exhausted retries are covered.
    assert_eq!(
        pipeline
            .call(|| async { Err::<u32, _>(Boom(1)) })
            .await
            .unwrap(),
        0
    );
    assert_eq!(used.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn fallback_covers_what_it_is_told_to() {
    let pipeline = Pipeline::new()
        .retry(fixed(ms(1), 2).retry_if(|_: &Boom| false))
        .with_fallback(Fallback::value(7u32).on(FallbackOn::NONE.with(StopReason::Permanent)));
    assert_eq!(
        pipeline
            .call(|| async { Err::<u32, _>(Boom(0)) })
            .await
            .unwrap(),
        7
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_fallback_is_reported_with_the_original_error() {
    let pipeline = Pipeline::new()
        .retry(fixed(ms(1), 2))
        .try_fallback(|_: &Error<Boom>| async { Err::<u32, _>(Boom(99)) });
    let err = pipeline
        .call(|| async { Err::<u32, _>(Boom(1)) })
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::FallbackFailed);
    assert_eq!(err.inner(), Some(&Boom(99)));
    let original = err.original().expect("the call's own error");
    assert_eq!(
        (original.reason(), original.inner()),
        (StopReason::Exhausted, Some(&Boom(1)))
    );
    assert!(err.to_string().contains("while handling"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn one_classifier_serves_retry_and_breaker() {
    // 404s are ignored: not retried, not counted by the breaker.
    let cb = breaker(1, Duration::from_secs(30));
    let calls = Counter::default();
    let pipeline = Pipeline::new()
        .retry(fixed(ms(1), 3).classify(|r: &Result<u16, Boom>| match r {
            Ok(404) => Class::Ignored,
            Ok(status) if *status >= 500 => Class::Transient,
            Ok(_) => Class::Success,
            Err(_) => Class::Transient,
        }))
        .breaker(cb.clone());
    let status = pipeline
        .call(|| {
            calls.bump();
            async { Ok::<u16, Boom>(404) }
        })
        .await
        .unwrap();
    assert_eq!((status, calls.get(), cb.state()), (404, 1, State::Closed));
    let err = pipeline
        .call(|| async { Ok::<u16, Boom>(503) })
        .await
        .unwrap_err();
    assert_eq!(
        cb.state(),
        State::Open,
        "a 503 is a failure for the breaker"
    );
    assert_eq!(
        (err.reason(), err.attempts()),
        (StopReason::CircuitOpen, 2),
        "and retried into the open circuit"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_call_mid_probe_returns_the_probe_slot() {
    let cb = CircuitBreaker::new(
        BreakerConfig::consecutive_failures(1)
            .with_open_duration(ms(100))
            .with_half_open_probes(1),
    )
    .unwrap();
    let pipeline = Pipeline::new().breaker(cb.clone());
    let _ = pipeline.call(|| async { Err::<(), _>(Boom(0)) }).await;
    tokio::time::advance(ms(200)).await;
    // The probe hangs; the caller gives up.
    let probe = tokio::time::timeout(
        ms(10),
        pipeline.call(std::future::pending::<Result<(), Boom>>),
    )
    .await;
    assert!(probe.is_err());
    // The slot came back: the next call is admitted as the probe and closes the breaker.
    pipeline.call(|| async { Ok::<_, Boom>(()) }).await.unwrap();
    assert_eq!(cb.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_sees_its_own_limit_as_the_deadline_in_scope() {
    // What the attempt calls, and the deadline header it sends, get the attempt's limit.
    let pipeline = Pipeline::new()
        .attempt_timeout(AttemptTimeout::fixed(ms(200)))
        .unwrap();
    let seen = Deadline::after(Duration::from_secs(5))
        .scope(pipeline.call(|| {
            let at_call = Deadline::current().map(|d| d.remaining());
            async move { Ok::<_, Boom>((at_call, Deadline::current().map(|d| d.remaining()))) }
        }))
        .await
        .unwrap();
    assert_eq!(seen, (Some(ms(200)), Some(ms(200))));
}

#[test]
fn an_invalid_attempt_timeout_is_a_config_error() {
    let err = Pipeline::new()
        .attempt_timeout(AttemptTimeout::fraction(2.0))
        .unwrap_err();
    assert_eq!(err.field(), "fraction");
}

#[test]
fn the_pipeline_and_its_call_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let pipeline = Pipeline::new()
        .retry(fixed(ms(1), 2))
        .breaker(breaker(3, Duration::from_secs(1)))
        .fallback(|_: &Error<Boom>| async { 1u32 });
    send_sync(&pipeline);
    send(pipeline.call(|| async { Ok::<u32, Boom>(1) }));
}

#[cfg(feature = "tower")]
mod tower_layer;

#[tokio::test(start_paused = true)]
async fn the_pipelines_retry_hook_sees_timeouts_and_may_call_back_into_the_breaker() {
    use std::sync::Mutex;

    let timeouts = Mutex::new(Vec::new());
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 3))
        .breaker(breaker(5, Duration::from_secs(30)))
        .attempt_timeout(AttemptTimeout::fixed(ms(50)))
        .unwrap()
        .with_name(String::from("inventory"));
    let hooked = pipeline.clone().on_retry(|event| {
        // No lock is held: asking the breaker from the hook cannot deadlock.
        let state = pipeline.get_breaker().unwrap().state();
        timeouts.lock().unwrap().push((
            event.policy().to_owned(),
            event.attempt(),
            event.timeout().map(|e| e.timeout()),
            event.error().cloned(),
            state,
        ));
    });
    let err = hooked
        .call(|| async {
            tokio::time::sleep(ms(100)).await;
            Ok::<u32, Boom>(1)
        })
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 3);
    let inventory = || "inventory".to_owned();
    assert_eq!(
        *timeouts.lock().unwrap(),
        [
            (inventory(), 1, Some(ms(50)), None::<Boom>, State::Closed),
            (inventory(), 2, Some(ms(50)), None, State::Closed),
        ]
    );
}

mod overload;
