//! Hedging in a `Pipeline`, in retry's place: each attempt goes through the breaker and its
//! attempt timeout, no hedge is sent while the breaker refuses, none outlives the deadline, and
//! an attempt dropped for a winner records nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
use staunch::deadline::AttemptTimeout;
use staunch::hedge::{HedgeEvent, HedgeEventKind};
use staunch::{Pipeline, StopReason};
use tokio::time::Instant;

use crate::support::{Fail, Script, Step, fixed, ms};

#[tokio::test(start_paused = true)]
async fn a_pipeline_hedges_in_retrys_place() {
    let pipeline = Pipeline::new()
        .hedge(fixed(ms(20), 2))
        .attempt_timeout(AttemptTimeout::fixed(ms(300)))
        .unwrap();
    let script = Script::new([Step::ok(1000), Step::ok(5)]);
    let start = Instant::now();
    let value = pipeline.call(|| script.attempt()).await.unwrap();
    assert_eq!((value, start.elapsed()), (1, ms(25)));
    assert_eq!(script.dropped(), [Some(ms(25)), None]);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_dropped_for_a_winner_records_nothing_in_the_breaker() {
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    let pipeline = Pipeline::new()
        .hedge(fixed(ms(20), 2))
        .breaker(breaker.clone());
    // The first attempt would fail, late; the hedge answers first and the first is dropped.
    let script = Script::new([Step::transient(1000), Step::ok(5)]);
    assert_eq!(pipeline.call(|| script.attempt()).await.unwrap(), 1);
    tokio::time::sleep(ms(2000)).await;
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the dropped failure was never counted"
    );
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn no_hedge_is_sent_while_the_breaker_refuses() {
    let breaker = half_open_with_one_probe().await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let hedge = fixed(ms(20), 3).on_hedge({
        let events = events.clone();
        move |event: &HedgeEvent| events.lock().unwrap().push(event.kind)
    });
    let pipeline = Pipeline::new().hedge(hedge).breaker(breaker.clone());
    // The first attempt is the one half-open probe; every hedge finds the slot taken.
    let script = Script::new([Step::ok(100), Step::ok(1), Step::ok(1)]);
    let start = Instant::now();
    assert_eq!(pipeline.call(|| script.attempt()).await.unwrap(), 0);
    assert_eq!(start.elapsed(), ms(100), "the call waited for its probe");
    assert_eq!(script.started().len(), 1, "no hedge reached the dependency");
    let refused = events
        .lock()
        .unwrap()
        .iter()
        .filter(|kind| **kind == HedgeEventKind::Refused(StopReason::CircuitOpen))
        .count();
    assert_eq!(refused, 2);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the probe's success closed it"
    );
}

/// A breaker tripped by one failure, whose 100 ms open period has just ended: the next call is
/// its one half-open probe.
async fn half_open_with_one_probe() -> CircuitBreaker {
    let breaker = CircuitBreaker::new(
        BreakerConfig::consecutive_failures(1)
            .with_open_duration(ms(100))
            .with_half_open_probes(1),
    )
    .unwrap();
    let _ = breaker.call(|| async { Err::<(), _>("down") }).await;
    tokio::time::sleep(ms(100)).await;
    breaker
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_ends_the_call_as_circuit_open() {
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    breaker.force_open();
    let pipeline = Pipeline::new().hedge(fixed(ms(20), 3)).breaker(breaker);
    let script = Script::new([Step::ok(1)]);
    let err = pipeline.call(|| script.attempt()).await.unwrap_err();
    assert_eq!(err.reason(), StopReason::CircuitOpen);
    assert!(script.started().is_empty());
}

#[tokio::test(start_paused = true)]
async fn no_attempt_outlives_the_deadline() {
    let pipeline = Pipeline::new().hedge(fixed(ms(20), 5)).timeout(ms(50));
    let script = Script::new([Step::ok(1000); 5]);
    let start = Instant::now();
    let err = pipeline.call(|| script.attempt()).await.unwrap_err();
    assert_eq!(err.reason(), StopReason::Deadline);
    assert!(
        err.is_timeout(),
        "the last attempt ran out of time: {err:?}"
    );
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(script.started(), [ms(0), ms(20), ms(40)]);
    assert_eq!(
        script.dropped(),
        [Some(ms(50)); 3],
        "each attempt cut at the deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn the_fallback_covers_a_hedged_call_whose_attempts_all_failed() {
    let pipeline = Pipeline::new()
        .hedge(fixed(ms(20), 2))
        .fallback_value(99u32);
    let script = Script::new([Step::transient(5), Step::transient(5)]);
    assert_eq!(pipeline.call(|| script.attempt()).await.unwrap(), 99);
    let script = Script::new([Step::permanent(5)]);
    let err = Pipeline::new()
        .hedge(fixed(ms(20), 2))
        .call(|| script.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.inner(), Some(&Fail::Permanent(0)));
    let _: Duration = err.elapsed();
}

#[tokio::test(start_paused = true)]
async fn retry_and_hedge_replace_each_other() {
    let hedged = Pipeline::new()
        .retry(staunch::Retry::new(staunch::RetryConfig::new()).unwrap())
        .hedge(fixed(ms(20), 2));
    assert!(format!("{hedged:?}").contains("retry: None"), "{hedged:?}");
    let retried = hedged.retry(staunch::Retry::new(staunch::RetryConfig::new()).unwrap());
    assert!(
        format!("{retried:?}").contains("hedge: None"),
        "{retried:?}"
    );
}

#[cfg(feature = "tower")]
mod tower_layer {
    use std::sync::Arc;

    use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
    use staunch::retry::Stopped;
    use staunch::{Pipeline, StopReason};
    use tokio::time::Instant;
    use tower::{Service, ServiceExt};

    use super::half_open_with_one_probe;
    use crate::support::{Script, Step, fixed, ms, scripted};

    #[tokio::test(start_paused = true)]
    async fn the_pipeline_layer_hedges_too() {
        let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
        let pipeline = Pipeline::new()
            .hedge(fixed(ms(20), 2))
            .breaker(breaker.clone());
        let script = Script::new([Step::transient(1000), Step::ok(5)]);
        let requests = Arc::default();
        let mut svc = tower::Layer::layer(&pipeline.layer(), scripted(&script, &requests));
        let start = Instant::now();
        let response = svc.ready().await.unwrap().call("key".into()).await.unwrap();
        assert_eq!((response, start.elapsed()), (1, ms(25)));
        assert_eq!(*requests.lock().unwrap(), ["key", "key"]);
        assert_eq!(script.dropped(), [Some(ms(25)), None]);
        tokio::time::sleep(ms(2000)).await;
        assert_eq!(
            breaker.state(),
            State::Closed,
            "the dropped failure was never counted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn through_the_layer_no_hedge_goes_out_while_the_breaker_refuses() {
        let breaker = half_open_with_one_probe().await;
        let pipeline = Pipeline::new()
            .hedge(fixed(ms(20), 3))
            .breaker(breaker.clone());
        let script = Script::new([Step::ok(100), Step::ok(1), Step::ok(1)]);
        let requests = Arc::default();
        let mut svc = tower::Layer::layer(&pipeline.layer(), scripted(&script, &requests));
        let response = svc.ready().await.unwrap().call("key".into()).await.unwrap();
        assert_eq!(response, 0);
        assert_eq!(requests.lock().unwrap().len(), 1);
        assert_eq!(breaker.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn through_the_layer_no_attempt_outlives_the_deadline_and_the_fallback_answers() {
        let pipeline = Pipeline::new().hedge(fixed(ms(20), 5)).timeout(ms(50));
        let script = Script::new([Step::ok(1000); 5]);
        let requests = Arc::default();
        let mut svc = tower::Layer::layer(&pipeline.layer(), scripted(&script, &requests));
        let err = svc
            .ready()
            .await
            .unwrap()
            .call("key".into())
            .await
            .unwrap_err();
        let stopped = err.downcast_ref::<Stopped>().expect("a Stopped");
        assert_eq!(
            (stopped.reason(), stopped.attempts()),
            (StopReason::Deadline, 3)
        );
        assert_eq!(script.dropped(), [Some(ms(50)); 3]);

        let with_fallback = pipeline.fallback_value(7u32);
        let script = Script::new([Step::ok(1000); 5]);
        let mut svc = tower::Layer::layer(&with_fallback.layer(), scripted(&script, &requests));
        let response = svc.ready().await.unwrap().call("key".into()).await.unwrap();
        assert_eq!(response, 7);
    }

    #[cfg(feature = "http")]
    #[tokio::test(start_paused = true)]
    async fn through_the_layer_with_the_gate_a_post_is_never_hedged() {
        use http::{Method, Request};
        use staunch::http::IdempotencyGate;

        // The POST's one attempt, then the GET's slow first and its fast hedge.
        let script = Script::new([Step::ok(100), Step::ok(100), Step::ok(1)]);
        let methods = Arc::new(std::sync::Mutex::new(Vec::new()));
        let inner = tower::service_fn({
            let (script, methods) = (script.clone(), methods.clone());
            move |request: Request<String>| {
                methods.lock().unwrap().push(request.method().clone());
                script.attempt()
            }
        });
        let layer = Pipeline::new()
            .hedge(fixed(ms(20), 2))
            .layer()
            .with_retry_request(IdempotencyGate::new());
        let mut svc = tower::Layer::layer(&layer, inner);
        for method in [Method::POST, Method::GET] {
            let request = Request::builder()
                .method(method)
                .body(String::from("{}"))
                .unwrap();
            svc.ready().await.unwrap().call(request).await.unwrap();
        }
        assert_eq!(
            *methods.lock().unwrap(),
            [Method::POST, Method::GET, Method::GET],
            "the slow POST waited; the slow GET was hedged"
        );
    }
}
