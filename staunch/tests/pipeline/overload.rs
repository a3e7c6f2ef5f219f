//! The admission checks inside the pipeline (DESIGN.md "Overload", "Composition"): per attempt,
//! inside retry, before the breaker; a refusal ends the call as itself, counts nowhere, and the
//! fallback covers it; a breaker's rejection frees the slot without a sample.

use std::time::Duration;

use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
use staunch::deadline::AttemptTimeout;
use staunch::limit::{
    AdaptiveThrottle, Aimd, ConcurrencyLimit, LimitConfig, Refusal, ThrottleConfig,
};
use staunch::retry::{BudgetConfig, RetryBudget};
use staunch::{Deadline, Error, Pipeline, StopReason};

use crate::support::{Boom, Counter, fixed, ms};

fn aimd(initial: u32) -> ConcurrencyLimit {
    ConcurrencyLimit::new(LimitConfig::aimd(
        Aimd::new()
            .with_initial_limit(initial)
            .with_min_limit(1)
            .with_max_limit(100),
    ))
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_full_limit_ends_the_call_at_once_and_counts_nowhere() {
    let limit = ConcurrencyLimit::new(LimitConfig::fixed(1)).unwrap();
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    let budget = RetryBudget::new(BudgetConfig::token_bucket(4, 0.1)).unwrap();
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 5).with_budget(budget.clone()))
        .breaker(breaker.clone())
        .limit(limit.clone());
    let _held = limit.try_acquire().unwrap();
    let calls = Counter::default();
    let start = tokio::time::Instant::now();
    let err = pipeline
        .call(|| {
            calls.bump();
            async { Ok::<(), Boom>(()) }
        })
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Refused(Refusal::LimitFull));
    assert!(err.is_refused());
    assert_eq!(err.refused().unwrap().reason(), Refusal::LimitFull);
    assert_eq!(err.attempts(), 1, "not retried");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(calls.get(), 0);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "not a failure for the breaker"
    );
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
    // The budget did not count it either: from 4 tokens a failure leaves 3 (> 4 / 2, a retry
    // is allowed); had the refusal counted too, 2 would refuse the retry.
    let failing = Pipeline::new()
        .retry(fixed(ms(10), 2).with_budget(budget))
        .call(|| async { Err::<(), _>(Boom(0)) })
        .await
        .unwrap_err();
    assert_eq!(
        failing.reason(),
        StopReason::Exhausted,
        "the budget still allowed a retry"
    );
}

#[tokio::test(start_paused = true)]
async fn the_default_fallback_covers_a_refusal() {
    let limit = ConcurrencyLimit::new(LimitConfig::fixed(1)).unwrap();
    let pipeline = Pipeline::new().limit(limit.clone()).fallback_value(9.99);
    let _held = limit.try_acquire().unwrap();
    let price = pipeline.call(|| async { Ok::<f64, Boom>(12.5) }).await;
    assert_eq!(price.unwrap(), 9.99);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_rejection_frees_the_slot_and_gives_no_sample() {
    let limit = aimd(10);
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    breaker.force_open();
    let pipeline = Pipeline::new().limit(limit.clone()).breaker(breaker);
    let err = pipeline
        .call(|| async { Ok::<(), Boom>(()) })
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::CircuitOpen);
    assert_eq!(limit.snapshot().in_flight, 0, "the slot came back");
    assert_eq!(limit.limit(), 10, "no drop sample for a rejection");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_a_drop_and_a_success_a_sample() {
    let limit = aimd(10);
    let pipeline = Pipeline::new()
        .limit(limit.clone())
        .attempt_timeout(AttemptTimeout::fixed(ms(100)))
        .unwrap();
    let err = pipeline
        .call(|| async {
            tokio::time::sleep(ms(1000)).await;
            Ok::<(), Boom>(())
        })
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(limit.limit(), 9, "10 * 0.9");
    // A success with the limit in use grows it; here 1 of 9 in flight is app-limited.
    pipeline
        .call(|| async { Ok::<(), Boom>(()) })
        .await
        .unwrap();
    assert_eq!(limit.limit(), 9);
    assert_eq!(limit.snapshot().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_call_cut_by_its_callers_deadline_gives_no_sample() {
    let limit = aimd(10);
    let pipeline = Pipeline::new()
        .limit(limit.clone())
        .attempt_timeout(AttemptTimeout::fixed(ms(500)))
        .unwrap();
    let err = Deadline::after(ms(50))
        .scope(pipeline.call(|| async {
            tokio::time::sleep(ms(1000)).await;
            Ok::<(), Boom>(())
        }))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(
        limit.limit(),
        10,
        "the caller's deadline says nothing about the dependency"
    );
}

#[tokio::test(start_paused = true)]
async fn a_queued_attempt_waits_then_runs_and_a_wait_past_the_deadline_is_refused() {
    let limit = ConcurrencyLimit::new(
        LimitConfig::fixed(1)
            .with_max_queue(4)
            .with_max_wait(ms(1000)),
    )
    .unwrap();
    let pipeline = Pipeline::new().limit(limit.clone());
    let held = limit.try_acquire_owned().unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(ms(200)).await;
        drop(held);
    });
    let start = tokio::time::Instant::now();
    pipeline
        .call(|| async { Ok::<(), Boom>(()) })
        .await
        .unwrap();
    assert_eq!(start.elapsed(), ms(200));
    release.await.unwrap();

    let _held = limit.try_acquire().unwrap();
    let err = Deadline::after(ms(50))
        .scope(pipeline.call(|| async { Ok::<(), Boom>(()) }))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Refused(Refusal::Deadline));
    assert_eq!(start.elapsed(), ms(250));
}

#[tokio::test(start_paused = true)]
async fn throttling_refuses_locally_once_the_dependency_refuses_most_calls() {
    let throttle = AdaptiveThrottle::new(ThrottleConfig::new().with_seed(3)).unwrap();
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1000)).unwrap();
    let pipeline = Pipeline::new()
        .throttle(throttle.clone())
        .breaker(breaker.clone());
    let calls = Counter::default();
    let mut throttled = 0;
    for _ in 0..200 {
        let outcome = pipeline
            .call(|| {
                calls.bump();
                async { Err::<(), _>(Boom(0)) }
            })
            .await;
        if let Err(err) = outcome
            && err.reason() == StopReason::Refused(Refusal::Throttled)
        {
            throttled += 1;
        }
    }
    assert!(throttled > 100, "{throttled}");
    assert_eq!(calls.get(), 200 - throttled);
    // Only the calls that reached the dependency count as the breaker's failures.
    assert_eq!(breaker.snapshot().consecutive_failures, calls.get());
    assert_eq!(throttle.snapshot().throttled, u64::from(throttled));
}

#[test]
fn a_refusal_reads_well() {
    let limit = ConcurrencyLimit::new(LimitConfig::fixed(1)).unwrap();
    let _held = limit.try_acquire().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let err: Error<Boom> = runtime
        .block_on(
            Pipeline::new()
                .limit(limit.clone())
                .call(|| async { Ok(()) }),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("refused locally"), "{text}");
    assert!(text.contains("concurrency limit is full"), "{text}");
}
