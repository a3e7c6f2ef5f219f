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
