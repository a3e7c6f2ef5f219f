//! The tower layer: `poll_ready` reserves nothing, rejections downcast to `CircuitOpen`, and it
//! composes with a `BoxError` inner service.

use std::time::Duration;

use staunch::breaker::{
    BoxError, BreakerConfig, CircuitBreaker, CircuitBreakerLayer, CircuitOpen, State,
};
use tower::{Layer, Service, ServiceExt, service_fn};

fn half_open_breaker() -> CircuitBreaker {
    let b = CircuitBreaker::new(
        BreakerConfig::consecutive_failures(1).with_open_duration(Duration::from_secs(1)),
    )
    .unwrap();
    b.try_acquire().unwrap().failure();
    b
}

/// The two ways to build the layer over one breaker: with its handle, and with a `&'static`
/// reference (a leaked clone of the handle, sharing its state).
fn layers(breaker: &CircuitBreaker) -> [(&'static str, CircuitBreakerLayer); 2] {
    let leaked: &'static CircuitBreaker = Box::leak(Box::new(breaker.clone()));
    [
        ("new", CircuitBreakerLayer::new(breaker.clone())),
        ("new_static", CircuitBreakerLayer::new_static(leaked)),
    ]
}

#[tokio::test(start_paused = true)]
async fn poll_ready_reserves_no_probe_slot() {
    let breaker = half_open_breaker();
    tokio::time::advance(Duration::from_secs(1)).await;
    for (how, layer) in layers(&breaker) {
        // Many clones polled ready and dropped without a call.
        for _ in 0..5 {
            let mut svc = layer.layer(service_fn(|x: u32| async move { Ok::<_, BoxError>(x) }));
            std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
            drop(svc);
        }
        assert_eq!(
            breaker.state(),
            State::Open,
            "{how}: no probe was admitted by poll_ready"
        );
        let svc = layer.layer(service_fn(|x: u32| async move { Ok::<_, BoxError>(x) }));
        let probe = svc.oneshot(1).await;
        assert_eq!(probe.unwrap(), 1, "{how}: the single probe slot is free");
        assert_eq!(breaker.state(), State::Closed, "{how}");
        breaker.try_acquire().unwrap().failure();
        tokio::time::advance(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_response_future_returns_the_probe_slot() {
    let breaker = half_open_breaker();
    tokio::time::advance(Duration::from_secs(1)).await;
    for (how, layer) in layers(&breaker) {
        let mut svc = layer.layer(service_fn(|_: ()| {
            std::future::pending::<Result<(), BoxError>>()
        }));
        let fut = svc.ready().await.unwrap().call(());
        assert_eq!(breaker.snapshot().probes_in_flight, 1, "{how}");
        drop(fut);
        assert_eq!(breaker.snapshot().probes_in_flight, 0, "{how}");
        assert_eq!(breaker.state(), State::HalfOpen, "{how}");
    }
}

#[tokio::test(start_paused = true)]
async fn rejections_downcast_to_circuit_open_and_inner_box_errors_pass_through() {
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    for (how, layer) in layers(&breaker) {
        breaker.reset();
        let mut svc = layer.layer(service_fn(|fail: bool| async move {
            if fail {
                Err::<u8, BoxError>("inner failure".into())
            } else {
                Ok(1)
            }
        }));
        let err = svc.ready().await.unwrap().call(true).await.unwrap_err();
        assert_eq!(err.to_string(), "inner failure", "{how}");
        assert!(!err.is::<CircuitOpen>(), "{how}");
        let err = svc.ready().await.unwrap().call(false).await.unwrap_err();
        let open = err.downcast_ref::<CircuitOpen>().expect("a CircuitOpen");
        assert_eq!(open.state(), State::Open, "{how}");
        assert_eq!(
            svc.breaker().state(),
            State::Open,
            "{how}: the same breaker"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_layer_classifies_with_a_closure() {
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    let layer = CircuitBreakerLayer::new(breaker.clone()).with_classifier(
        |r: &Result<u16, std::io::Error>| match r {
            Ok(503) => staunch::classify::Class::Transient,
            _ => staunch::classify::Class::Success,
        },
    );
    let svc = layer.layer(service_fn(|code: u16| async move {
        Ok::<_, std::io::Error>(code)
    }));
    assert_eq!(svc.clone().oneshot(200).await.unwrap(), 200);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(svc.oneshot(503).await.unwrap(), 503);
    assert_eq!(breaker.state(), State::Open);
}
