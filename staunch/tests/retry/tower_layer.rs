//! The retry layer through tower services.

use std::time::Duration;

use staunch::classify::Class;
use staunch::retry::{RetryLayer, Stopped};
use staunch::{Deadline, StopReason};
use tower::{Layer, Service, ServiceExt, service_fn};

use crate::support::{Boom, Counter, fixed, ms};

#[tokio::test(start_paused = true)]
async fn retries_a_failing_service_until_it_succeeds() {
    let calls = Counter::default();
    let inner = service_fn({
        let calls = calls.clone();
        move |req: u32| {
            let n = calls.bump();
            async move { if n < 3 { Err(Boom(n)) } else { Ok(req * 2) } }
        }
    });
    let mut svc = RetryLayer::new(fixed(ms(10), 5)).layer(inner);
    let response = svc.ready().await.unwrap().call(21).await.unwrap();
    assert_eq!((response, calls.get()), (42, 3));
}

#[tokio::test(start_paused = true)]
async fn gives_up_with_a_downcastable_stop_carrying_the_last_error() {
    let calls = Counter::default();
    let inner = service_fn({
        let calls = calls.clone();
        move |_: ()| {
            let n = calls.bump();
            async move { Err::<(), _>(Boom(n)) }
        }
    });
    let mut svc = RetryLayer::new(fixed(ms(10), 3)).layer(inner);
    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    let stopped = err.downcast_ref::<Stopped>().expect("a Stopped");
    assert_eq!(
        (stopped.reason(), stopped.attempts()),
        (StopReason::Exhausted, 3)
    );
    let source = std::error::Error::source(stopped).unwrap();
    assert_eq!(source.to_string(), "boom #3");
    assert_eq!(calls.get(), 3);
    let numbers: Vec<u32> = stopped.attempt_log().iter().map(|a| a.number()).collect();
    assert_eq!(numbers, [1, 2, 3], "the log crosses into the boxed error");
}

#[tokio::test(start_paused = true)]
async fn responses_classified_as_failures_are_retried() {
    let calls = Counter::default();
    let inner = service_fn({
        let calls = calls.clone();
        move |_: ()| {
            let n = calls.bump();
            async move { Ok::<u16, Boom>(if n < 2 { 503 } else { 200 }) }
        }
    });
    let retry = fixed(ms(10), 3).classify(|r: &Result<u16, Boom>| match r {
        Ok(503) | Err(_) => Class::Transient,
        Ok(_) => Class::Success,
    });
    let mut svc = RetryLayer::new(retry).layer(inner);
    assert_eq!(svc.ready().await.unwrap().call(()).await.unwrap(), 200);
    assert_eq!(calls.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_be_copied_gets_one_attempt() {
    #[derive(Debug)]
    struct Streamed;
    let calls = Counter::default();
    let inner = service_fn({
        let calls = calls.clone();
        move |_: Streamed| {
            calls.bump();
            async { Err::<(), _>(Boom(0)) }
        }
    });
    let layer = RetryLayer::new(fixed(ms(10), 5)).with_retry_request(|_: &Streamed| None);
    let mut svc = layer.layer(inner);
    let err = svc.ready().await.unwrap().call(Streamed).await.unwrap_err();
    assert_eq!(err.downcast_ref::<Stopped>().unwrap().attempts(), 1);
    assert_eq!(calls.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_in_scope_bounds_the_service_call() {
    let calls = Counter::default();
    let inner = service_fn({
        let calls = calls.clone();
        move |_: ()| {
            calls.bump();
            async { Err::<(), _>(Boom(0)) }
        }
    });
    let mut svc = RetryLayer::new(fixed(ms(100), 10)).layer(inner);
    let ready = svc.ready().await.unwrap();
    let err = Deadline::after(ms(250))
        .scope_sync(|| ready.call(()))
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<Stopped>().unwrap().reason(),
        StopReason::Deadline
    );
    assert_eq!(calls.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn waits_for_readiness_before_each_retry_through_tower_test_mock() {
    let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
    let mut svc = RetryLayer::new(fixed(Duration::from_secs(1), 3)).layer(mock);
    handle.allow(1);
    let ready = svc.ready().await.unwrap();
    let response = tokio::spawn(ready.call("ping"));
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "ping");
    send.send_error(Boom(1));
    // The retry waits for readiness: grant it after the delay.
    tokio::time::sleep(Duration::from_secs(2)).await;
    handle.allow(1);
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "ping", "the copy is sent again");
    send.send_response("pong");
    assert_eq!(response.await.unwrap().unwrap(), "pong");
}

#[tokio::test(start_paused = true)]
async fn the_layers_hook_sees_responses_classified_as_failures() {
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let calls = Counter::default();
    let inner = service_fn({
        let calls = calls.clone();
        move |_: ()| {
            let n = calls.bump();
            async move { Ok::<u16, Boom>(if n < 3 { 503 } else { 200 }) }
        }
    });
    let retry = fixed(ms(10), 3)
        .classify(|r: &Result<u16, Boom>| match r {
            Ok(503) | Err(_) => Class::Transient,
            Ok(_) => Class::Success,
        })
        .on_retry({
            let statuses = statuses.clone();
            move |event: &staunch::retry::RetryEvent<'_, u16, Boom>| {
                statuses.lock().unwrap().push(event.value().copied());
            }
        });
    let mut svc = RetryLayer::new(retry).layer(inner);
    assert_eq!(svc.ready().await.unwrap().call(()).await.unwrap(), 200);
    assert_eq!(*statuses.lock().unwrap(), [Some(503), Some(503)]);
}
