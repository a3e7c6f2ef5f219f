//! The chaos policy as a tower layer.
#![cfg(feature = "tower")]

use std::time::Duration;

use staunch::chaos::{Chaos, ChaosConfig, ChaosLayer, ChaosService};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

use crate::support::{Boom, Counter, ms};

/// A service that counts its calls (when `call` runs) and its polls (when its future runs).
fn counting(
    calls: &Counter,
    polls: &Counter,
) -> impl Service<u32, Response = u32, Error = Boom, Future: Send> + Clone + use<> {
    let (calls, polls) = (calls.clone(), polls.clone());
    service_fn(move |request: u32| {
        calls.bump();
        let polls = polls.clone();
        async move {
            polls.bump();
            Ok(request * 2)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn an_injected_error_is_the_services_own_and_the_inner_service_is_not_called() {
    let (calls, polls) = (Counter::default(), Counter::default());
    let chaos = Chaos::new(ChaosConfig::new().with_error(1.0, || Boom(42))).unwrap();
    let mut svc = ChaosLayer::new(chaos).layer(counting(&calls, &polls));
    let err: Boom = svc.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(err, Boom(42));
    assert_eq!((calls.get(), polls.get()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn an_injected_delay_calls_at_once_and_polls_after_the_delay() {
    let (calls, polls) = (Counter::default(), Counter::default());
    let chaos = Chaos::new(ChaosConfig::new().with_delay(1.0, ms(250))).unwrap();
    let mut svc = ChaosLayer::new(chaos).layer(counting(&calls, &polls));
    let start = Instant::now();
    let future = svc.ready().await.unwrap().call(4);
    assert_eq!((calls.get(), polls.get()), (1, 0));
    let mut future = std::pin::pin!(future);
    assert!(
        futures_poll(future.as_mut()).is_none(),
        "waiting out the delay"
    );
    assert_eq!(polls.get(), 0);
    assert_eq!(future.await, Ok(8));
    assert_eq!(polls.get(), 1);
    assert_eq!(start.elapsed(), ms(250));
}

#[tokio::test(start_paused = true)]
async fn a_substitute_response_replaces_the_call() {
    let (calls, polls) = (Counter::default(), Counter::default());
    let chaos = Chaos::new(ChaosConfig::new().with_result(1.0, || 503_u32)).unwrap();
    let mut svc = ChaosService::new(counting(&calls, &polls), chaos);
    assert_eq!(svc.ready().await.unwrap().call(1).await, Ok(503));
    assert_eq!(calls.get(), 0);
    svc.chaos().switch().disable();
    assert_eq!(svc.ready().await.unwrap().call(1).await, Ok(2));
    assert_eq!(
        svc.get_ref().clone().ready().await.unwrap().call(3).await,
        Ok(6)
    );
}

#[tokio::test(start_paused = true)]
async fn off_the_layer_passes_every_call_through() {
    let (calls, polls) = (Counter::default(), Counter::default());
    let chaos = Chaos::new(
        ChaosConfig::new()
            .with_error(1.0, || Boom(0))
            .with_delay(1.0, Duration::from_secs(1))
            .with_enabled(false),
    )
    .unwrap();
    let mut svc = ChaosLayer::new(chaos).layer(counting(&calls, &polls));
    let start = Instant::now();
    for request in 0..5 {
        assert_eq!(
            svc.ready().await.unwrap().call(request).await,
            Ok(request * 2)
        );
    }
    assert_eq!((calls.get(), polls.get()), (5, 5));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[test]
fn the_service_future_is_send_when_the_inner_one_is() {
    fn send<T: Send>(_: &T) {}
    let chaos = Chaos::new(ChaosConfig::new().with_error(0.5, || Boom(0))).unwrap();
    let mut svc = ChaosLayer::new(chaos).layer(counting(&Counter::default(), &Counter::default()));
    send(&svc);
    send(&svc.call(1));
}

/// Polls `future` once with a waker that does nothing.
fn futures_poll<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

#[test]
fn the_layer_is_debug_with_closures_for_makers() {
    let chaos = Chaos::new(
        ChaosConfig::new()
            .with_error(0.5, || Boom(0))
            .with_name("db"),
    )
    .unwrap();
    let layer = ChaosLayer::new(chaos);
    assert!(format!("{layer:?}").contains("db"), "{layer:?}");
    let svc = layer.layer(tower::service_fn(|r: u32| async move { Ok::<_, Boom>(r) }));
    let _ = svc.chaos();
}
