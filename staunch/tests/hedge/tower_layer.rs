//! The hedge layer through tower services.

use std::sync::Arc;

use staunch::classify::Class;
use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay, HedgeLayer};
use staunch::retry::{MakeRetryRequest, Stopped};
use staunch::{Deadline, StopReason};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use crate::support::{Script, Step, fixed, ms, scripted};

#[tokio::test(start_paused = true)]
async fn a_slow_call_is_hedged_on_a_clone_with_a_copy_of_the_request() {
    let script = Script::new([Step::ok(1000), Step::ok(5)]);
    let requests = Arc::default();
    let mut svc = HedgeLayer::new(fixed(ms(20), 2)).layer(scripted(&script, &requests));
    let start = Instant::now();
    let response = svc
        .ready()
        .await
        .unwrap()
        .call("key".to_owned())
        .await
        .unwrap();
    assert_eq!((response, start.elapsed()), (1, ms(25)));
    assert_eq!(*requests.lock().unwrap(), ["key", "key"]);
    assert_eq!(script.dropped(), [Some(ms(25)), None]);
}

#[tokio::test(start_paused = true)]
async fn a_fast_call_is_not_hedged() {
    let script = Script::new([Step::ok(5)]);
    let requests = Arc::default();
    let mut svc = HedgeLayer::new(fixed(ms(20), 3)).layer(scripted(&script, &requests));
    let response = svc.ready().await.unwrap().call("a".into()).await.unwrap();
    assert_eq!(response, 0);
    assert_eq!(requests.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_may_not_be_copied_is_sent_once() {
    let script = Script::new([Step::ok(1000), Step::ok(1)]);
    let requests = Arc::default();
    let layer = HedgeLayer::new(fixed(ms(20), 3)).with_hedge_request(|_: &String| None);
    let mut svc = layer.layer(scripted(&script, &requests));
    let start = Instant::now();
    let response = svc.ready().await.unwrap().call("a".into()).await.unwrap();
    assert_eq!((response, start.elapsed()), (0, ms(1000)));
    assert_eq!(requests.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_copier_that_only_knows_retries_sends_no_hedge() {
    // A custom copier that gates retries after the fact cannot gate a hedge, so the default
    // `hedge_request` says no.
    struct RetryOnly;
    impl MakeRetryRequest<String> for RetryOnly {
        fn retry_request(&self, request: &String) -> Option<String> {
            Some(request.clone())
        }
    }
    let script = Script::new([Step::ok(100), Step::ok(1)]);
    let requests = Arc::default();
    let layer = HedgeLayer::new(fixed(ms(20), 2)).with_hedge_request(RetryOnly);
    let mut svc = layer.layer(scripted(&script, &requests));
    svc.ready().await.unwrap().call("a".into()).await.unwrap();
    assert_eq!(requests.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn every_attempt_failing_comes_back_as_a_stop_with_each_class() {
    let script = Script::new([Step::transient(30), Step::permanent(40)]);
    let requests = Arc::default();
    let mut svc = HedgeLayer::new(fixed(ms(10), 2)).layer(scripted(&script, &requests));
    let err = svc
        .ready()
        .await
        .unwrap()
        .call("a".into())
        .await
        .unwrap_err();
    let stopped = err.downcast_ref::<Stopped>().expect("a Stopped");
    assert_eq!(
        (stopped.reason(), stopped.attempts()),
        (StopReason::Permanent, 2)
    );
    assert_eq!(
        stopped
            .attempt_log()
            .iter()
            .map(|a| a.class())
            .collect::<Vec<_>>(),
        [Class::Transient, Class::Permanent]
    );
    let source = std::error::Error::source(stopped).unwrap();
    assert_eq!(source.to_string(), "Permanent(1)");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_in_scope_at_the_call_bounds_the_hedges() {
    let script = Script::new([Step::ok(100); 4]);
    let requests = Arc::default();
    let mut svc = HedgeLayer::new(fixed(ms(20), 4)).layer(scripted(&script, &requests));
    let ready = svc.ready().await.unwrap();
    // The call is made in the scope; the future is polled outside it.
    let future = Deadline::after(ms(50)).scope_sync(|| ready.call("a".into()));
    assert_eq!(future.await.unwrap(), 0);
    assert_eq!(script.started(), [ms(0), ms(20), ms(40)]);
}

#[tokio::test(start_paused = true)]
async fn each_hedge_waits_for_its_clone_to_be_ready() {
    let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
    let hedge = Hedge::new(HedgeConfig::new(HedgeDelay::fixed(ms(20)))).unwrap();
    let mut svc = HedgeLayer::new(hedge).layer(mock);
    handle.allow(1);
    let ready = svc.ready().await.unwrap();
    let response = tokio::spawn(ready.call("ping"));
    let (request, _first) = handle.next_request().await.unwrap();
    assert_eq!(request, "ping");
    // The hedge is due at 20 ms but its clone is not ready until 50 ms.
    tokio::time::sleep(ms(50)).await;
    handle.allow(1);
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "ping", "the copy goes out once the clone is ready");
    send.send_response("pong");
    assert_eq!(response.await.unwrap().unwrap(), "pong");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_response_future_drops_every_attempt() {
    let script = Script::new([Step::ok(1000); 3]);
    let requests = Arc::default();
    let mut svc = HedgeLayer::new(fixed(ms(10), 3)).layer(scripted(&script, &requests));
    let future = svc.ready().await.unwrap().call("a".into());
    assert!(tokio::time::timeout(ms(25), future).await.is_err());
    assert_eq!(script.started().len(), 3);
    assert_eq!(script.live(), 0);
}

#[test]
fn the_response_future_is_send() {
    fn is_send<T: Send>(_: &T) {}
    let script = Script::new([Step::ok(1)]);
    let requests = Arc::default();
    let mut svc = HedgeLayer::new(fixed(ms(10), 3)).layer(scripted(&script, &requests));
    is_send(&svc.call("a".into()));
}
