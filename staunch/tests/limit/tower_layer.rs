//! The concurrency limit as a tower layer: the slot is taken in `call` or waited for in the
//! response future; never reserved in `poll_ready`.

use std::time::Duration;

use staunch::limit::{
    BoxError, ConcurrencyLimit, ConcurrencyLimitLayer, LimitConfig, Refusal, Refused,
};
use tower::{Layer, Service, ServiceExt, service_fn};

const MS: Duration = Duration::from_millis(1);

fn slow_service() -> impl Service<u32, Response = u32, Error = std::io::Error, Future: Send> + Clone
{
    service_fn(|x: u32| async move {
        tokio::time::sleep(100 * MS).await;
        Ok::<_, std::io::Error>(x)
    })
}

fn refused(err: &BoxError) -> Refusal {
    err.downcast_ref::<Refused>().expect("a Refused").reason()
}

#[tokio::test(start_paused = true)]
async fn ready_reserves_nothing_and_a_full_limit_refuses_in_call() {
    let limit = ConcurrencyLimit::new(LimitConfig::fixed(1)).unwrap();
    let mut svc = ConcurrencyLimitLayer::new(limit.clone()).layer(slow_service());
    // Polled ready, never called: nothing held.
    svc.ready().await.unwrap();
    assert_eq!(limit.snapshot().in_flight, 0);
    let first = svc.ready().await.unwrap().call(1);
    assert_eq!(limit.snapshot().in_flight, 1, "taken in call");
    let second = svc.ready().await.unwrap().call(2).await.unwrap_err();
    assert_eq!(refused(&second), Refusal::LimitFull);
    assert_eq!(first.await.unwrap(), 1);
    assert_eq!(limit.snapshot().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_queued_call_runs_when_a_slot_frees_and_a_dropped_one_leaves() {
    let limit = ConcurrencyLimit::new(
        LimitConfig::fixed(1)
            .with_max_queue(2)
            .with_max_wait(150 * MS),
    )
    .unwrap();
    let svc = ConcurrencyLimitLayer::new(limit.clone()).layer(slow_service());
    let start = tokio::time::Instant::now();
    let (a, b) = tokio::join!(svc.clone().oneshot(1), async {
        tokio::task::yield_now().await;
        svc.clone().oneshot(2).await
    });
    assert_eq!((a.unwrap(), b.unwrap()), (1, 2));
    assert_eq!(start.elapsed(), 200 * MS, "the second waited for the first");

    let mut svc2 = svc.clone();
    let held = svc2.ready().await.unwrap().call(3);
    let mut queued = Box::pin(svc.clone().oneshot(4));
    let waker = std::task::Waker::noop();
    assert!(
        queued
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_pending()
    );
    assert_eq!(limit.snapshot().queued, 1);
    drop(queued);
    assert_eq!(limit.snapshot().queued, 0);
    drop(held);
    assert_eq!(limit.snapshot().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_max_wait_is_refused() {
    let limit = ConcurrencyLimit::new(
        LimitConfig::fixed(1)
            .with_max_queue(1)
            .with_max_wait(50 * MS),
    )
    .unwrap();
    let svc = ConcurrencyLimitLayer::new(limit.clone()).layer(slow_service());
    let (a, b) = tokio::join!(svc.clone().oneshot(1), async {
        tokio::task::yield_now().await;
        svc.clone().oneshot(2).await
    });
    assert_eq!(a.unwrap(), 1);
    assert_eq!(refused(&b.unwrap_err()), Refusal::QueueTimeout);
}

use std::future::Future as _;

#[tokio::test(start_paused = true)]
async fn a_throttle_layer_counts_outcomes_and_refuses_in_call() {
    use staunch::limit::{AdaptiveThrottle, ThrottleConfig, ThrottleLayer};

    let throttle = AdaptiveThrottle::new(ThrottleConfig::new().with_seed(11)).unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let svc = ThrottleLayer::new(throttle.clone()).layer(service_fn({
        let calls = calls.clone();
        move |_: u32| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err::<u32, _>(std::io::Error::other("503")) }
        }
    }));
    let mut throttled = 0;
    for i in 0..200 {
        let err = svc.clone().oneshot(i).await.unwrap_err();
        if let Some(refused) = err.downcast_ref::<Refused>() {
            assert_eq!(refused.reason(), Refusal::Throttled);
            throttled += 1;
        }
    }
    assert!(throttled > 100, "{throttled}");
    let snapshot = throttle.snapshot();
    assert_eq!(snapshot.throttled, throttled);
    assert_eq!(
        u64::from(calls.load(std::sync::atomic::Ordering::SeqCst)),
        200 - throttled,
        "a throttled call never reached the service"
    );
    assert_eq!(snapshot.accepts, 0);
}

#[cfg(feature = "rate-limit")]
#[tokio::test(start_paused = true)]
async fn a_rate_limit_layer_waits_for_its_token_or_refuses() {
    use staunch::Deadline;
    use staunch::limit::{RateConfig, RateLimit, RateLimitLayer};

    let rate = RateLimit::new(
        RateConfig::new(10, 1000 * MS)
            .with_burst(1)
            .with_max_wait(150 * MS),
    )
    .unwrap();
    let svc =
        RateLimitLayer::new(rate).layer(service_fn(
            |x: u32| async move { Ok::<_, std::io::Error>(x) },
        ));
    let start = tokio::time::Instant::now();
    assert_eq!(svc.clone().oneshot(1).await.unwrap(), 1);
    assert_eq!(
        svc.clone().oneshot(2).await.unwrap(),
        2,
        "waited for the next token"
    );
    assert_eq!(start.elapsed(), 100 * MS);
    // The next token comes in 100 ms; a deadline 50 ms away refuses at once.
    let err = Deadline::after(50 * MS)
        .scope(async { svc.clone().oneshot(3).await })
        .await
        .unwrap_err();
    assert_eq!(refused(&err), Refusal::Deadline);
    assert_eq!(start.elapsed(), 100 * MS);
}
