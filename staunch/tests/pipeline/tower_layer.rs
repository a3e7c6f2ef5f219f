//! The pipeline as a tower layer: the same rules through a service.

use std::time::Duration;

use staunch::breaker::{BreakerConfig, CircuitBreaker, CircuitOpen, State};
use staunch::deadline::{AttemptTimeout, Elapsed};
use staunch::retry::{BoxError, Stopped};
use staunch::{Error, Pipeline, StopReason};
use tower::{Layer, Service, ServiceExt, service_fn};

use crate::support::{Boom, Counter, fixed, ms};

fn stopped(err: &BoxError) -> &Stopped {
    err.downcast_ref::<Stopped>().expect("a Stopped")
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_ends_retries_and_is_downcastable() {
    let calls = Counter::default();
    let svc = service_fn({
        let calls = calls.clone();
        move |_: ()| {
            let n = calls.bump();
            async move { Err::<(), _>(Boom(n)) }
        }
    });
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 5))
        .breaker(CircuitBreaker::new(BreakerConfig::consecutive_failures(3)).unwrap());
    let mut svc = pipeline.layer().layer(svc);
    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(calls.get(), 3);
    let stop = stopped(&err);
    assert_eq!(
        (stop.reason(), stop.attempts()),
        (StopReason::CircuitOpen, 4)
    );
    let source = std::error::Error::source(stop).unwrap();
    assert!(source.downcast_ref::<CircuitOpen>().is_some(), "{source}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_service_times_out_inside_the_breaker() {
    let calls = Counter::default();
    let cb = CircuitBreaker::new(BreakerConfig::consecutive_failures(2)).unwrap();
    let svc = service_fn({
        let calls = calls.clone();
        move |_: ()| {
            calls.bump();
            async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, Boom>("late")
            }
        }
    });
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 2))
        .breaker(cb.clone())
        .attempt_timeout(AttemptTimeout::fixed(ms(100)))
        .unwrap();
    let mut svc = pipeline.layer().layer(svc);
    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    let stop = stopped(&err);
    assert_eq!(stop.reason(), StopReason::Exhausted);
    assert!(
        std::error::Error::source(stop)
            .unwrap()
            .downcast_ref::<Elapsed>()
            .is_some()
    );
    assert_eq!((calls.get(), cb.state()), (2, State::Open));
}

#[tokio::test(start_paused = true)]
async fn a_fallback_answers_for_the_service() {
    let svc = service_fn(|_: ()| async { Err::<u32, _>(Boom(1)) });
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 2))
        .fallback(|err: &Error<Boom>| {
            let attempts = err.attempts();
            async move { 100 + attempts }
        });
    let mut svc = pipeline.layer().layer(svc);
    assert_eq!(svc.ready().await.unwrap().call(()).await.unwrap(), 102);
}

#[tokio::test(start_paused = true)]
async fn the_overall_deadline_ends_a_hanging_service() {
    let svc = service_fn(|_: ()| std::future::pending::<Result<(), Boom>>());
    let pipeline = Pipeline::new().timeout(Duration::from_secs(1));
    let mut svc = pipeline.layer().layer(svc);
    let start = tokio::time::Instant::now();
    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(stopped(&err).reason(), StopReason::Timeout);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn the_service_call_sees_the_attempt_limit_as_its_deadline() {
    let svc = service_fn(|()| {
        let at_call = staunch::Deadline::current().map(|d| d.remaining());
        async move { Ok::<_, Boom>((at_call, staunch::Deadline::current().map(|d| d.remaining()))) }
    });
    let pipeline = Pipeline::new()
        .timeout(Duration::from_secs(5))
        .attempt_timeout(AttemptTimeout::fixed(ms(300)))
        .unwrap();
    let mut svc = pipeline.layer().layer(svc);
    let seen = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(seen, (Some(ms(300)), Some(ms(300))));
}

#[tokio::test(start_paused = true)]
async fn composes_with_a_box_error_inner_service() {
    let calls = Counter::default();
    let svc = service_fn({
        let calls = calls.clone();
        move |x: u32| {
            let n = calls.bump();
            async move {
                if n < 2 {
                    Err::<u32, BoxError>("flaky".into())
                } else {
                    Ok(x + 1)
                }
            }
        }
    });
    let pipeline = Pipeline::new().retry(fixed(ms(10), 3));
    let mut svc = tower::ServiceBuilder::new()
        .layer(pipeline.layer())
        .service(svc);
    assert_eq!(svc.ready().await.unwrap().call(41).await.unwrap(), 42);
    assert_eq!(calls.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn retries_wait_for_readiness_through_a_tower_test_mock() {
    let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
    let pipeline = Pipeline::new().retry(fixed(Duration::from_secs(1), 3));
    let mut svc = pipeline.layer().layer(mock);
    handle.allow(1);
    let ready = svc.ready().await.unwrap();
    let response = tokio::spawn(ready.call("ping"));
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "ping");
    send.send_error(Boom(1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    handle.allow(1);
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!(request, "ping");
    send.send_response("pong");
    assert_eq!(response.await.unwrap().unwrap(), "pong");
}

#[cfg(feature = "http")]
mod idempotency {
    use std::time::Duration;

    use http::{Method, Request, Response};
    use staunch::Pipeline;
    use staunch::deadline::AttemptTimeout;
    use staunch::http::{HttpClassifier, IdempotencyGate};
    use tower::{Layer, Service, ServiceExt, service_fn};

    use crate::support::{Counter, fixed, ms};

    /// A service that answers 503 to every request, or hangs when `hang` is set.
    async fn call_with(method: Method, hang: bool) -> u32 {
        let calls = Counter::default();
        let svc = service_fn({
            let calls = calls.clone();
            move |_: Request<String>| {
                calls.bump();
                async move {
                    if hang {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Ok::<_, std::io::Error>(Response::builder().status(503).body(()).unwrap())
                }
            }
        });
        let pipeline = Pipeline::new()
            .retry(fixed(ms(10), 3).classify(HttpClassifier::new()))
            .attempt_timeout(AttemptTimeout::fixed(ms(100)))
            .unwrap();
        let mut svc = pipeline
            .layer()
            .with_retry_request(IdempotencyGate::new())
            .layer(svc);
        let request = Request::builder()
            .method(method)
            .body(String::new())
            .unwrap();
        let _ = svc.ready().await.unwrap().call(request).await;
        calls.get()
    }

    #[tokio::test(start_paused = true)]
    async fn the_pipeline_gates_retries_on_the_method() {
        assert_eq!(call_with(Method::GET, false).await, 3, "a GET is retried");
        assert_eq!(
            call_with(Method::POST, false).await,
            1,
            "a POST that got a 503 is not"
        );
        assert_eq!(
            call_with(Method::GET, true).await,
            3,
            "a GET that timed out is retried"
        );
        assert_eq!(
            call_with(Method::POST, true).await,
            1,
            "a POST that timed out may have arrived"
        );
    }
}

// ---- admission checks through the service ---------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_full_limit_refuses_through_the_service_and_frees_every_slot() {
    use staunch::limit::{ConcurrencyLimit, LimitConfig, Refusal, Refused};

    let calls = Counter::default();
    let svc = service_fn({
        let calls = calls.clone();
        move |_: ()| {
            calls.bump();
            async move {
                tokio::time::sleep(ms(100)).await;
                Ok::<_, Boom>(())
            }
        }
    });
    let limit = ConcurrencyLimit::new(
        LimitConfig::fixed(1)
            .with_max_queue(1)
            .with_max_wait(ms(150)),
    )
    .unwrap();
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1)).unwrap();
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 3))
        .breaker(breaker.clone())
        .limit(limit.clone());
    let svc = pipeline.layer().layer(svc);

    // Three at once: one runs, one waits its turn in the queue, one finds the queue full.
    let start = tokio::time::Instant::now();
    let mut results = Vec::new();
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let mut svc = svc.clone();
            tokio::spawn(async move {
                tokio::time::sleep(ms(i)).await; // in order
                let outcome = svc.ready().await.unwrap().call(()).await;
                (outcome, tokio::time::Instant::now())
            })
        })
        .collect();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert!(results[0].0.is_ok());
    assert!(results[1].0.is_ok(), "the queued call ran after the first");
    assert_eq!(results[1].1 - start, ms(200));
    let err = results[2].0.as_ref().unwrap_err();
    let stop = stopped(err);
    assert_eq!(stop.reason(), StopReason::Refused(Refusal::LimitFull));
    let source = std::error::Error::source(stop).unwrap();
    assert_eq!(
        source.downcast_ref::<Refused>().unwrap().reason(),
        Refusal::LimitFull
    );
    assert_eq!(calls.get(), 2);
    assert_eq!(breaker.state(), State::Closed);
    let snapshot = limit.snapshot();
    assert_eq!((snapshot.in_flight, snapshot.queued), (0, 0));

    // A breaker rejection through the service frees the slot.
    breaker.force_open();
    let mut one = svc.clone();
    let err = one.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(stopped(&err).reason(), StopReason::CircuitOpen);
    assert_eq!(limit.snapshot().in_flight, 0);

    // A response future dropped mid-call frees its slot.
    breaker.reset();
    let mut pending = Box::pin(one.ready().await.unwrap().call(()));
    assert!(futures_poll(pending.as_mut()).is_pending());
    assert_eq!(limit.snapshot().in_flight, 1);
    drop(pending);
    assert_eq!(limit.snapshot().in_flight, 0);
}

fn futures_poll<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}
