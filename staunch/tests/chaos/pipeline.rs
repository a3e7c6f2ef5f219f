//! The chaos policy innermost in a pipeline: every other policy meets an injected fault as it
//! would meet a real one.

use std::time::Duration;

use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
use staunch::chaos::{Chaos, ChaosConfig};
use staunch::classify::Class;
use staunch::deadline::AttemptTimeout;
use staunch::{Pipeline, StopReason};
use tokio::time::Instant;

use crate::support::{Boom, Counter, fixed, ms};

fn breaker(failures: u32) -> CircuitBreaker {
    CircuitBreaker::new(
        BreakerConfig::consecutive_failures(failures).with_open_duration(Duration::from_secs(30)),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_injected_delay_times_out_inside_the_attempt_timeout_and_trips_the_breaker() {
    let polls = Counter::default();
    let cb = breaker(2);
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 5))
        .breaker(cb.clone())
        .attempt_timeout(AttemptTimeout::fixed(ms(100)))
        .unwrap();
    let chaos = Chaos::new(ChaosConfig::new().with_delay(1.0, Duration::from_secs(2))).unwrap();
    let start = Instant::now();
    let err = pipeline
        .call(|| {
            chaos.call(|| async {
                polls.bump();
                Ok::<_, Boom>(())
            })
        })
        .await
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::CircuitOpen);
    assert_eq!(err.attempts(), 3, "two timeouts, then the open circuit");
    assert_eq!(cb.state(), State::Open);
    assert_eq!(polls.get(), 0, "no attempt outlived its delay");
    assert_eq!(start.elapsed(), ms(100 + 10 + 100 + 10));
}

#[tokio::test(start_paused = true)]
async fn an_injected_error_is_classified_by_the_pipelines_classifier() {
    let calls = Counter::default();
    let cb = breaker(10);
    // 404 is permanent, anything else is retried.
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 3))
        .retry_if(|e: &Boom| e.0 != 404)
        .breaker(cb.clone());
    let op = || async { Ok::<_, Boom>(calls.bump()) };

    let not_found = Chaos::new(ChaosConfig::new().with_error(1.0, || Boom(404))).unwrap();
    let err = pipeline.call(|| not_found.call(op)).await.unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::Permanent, 1));
    assert_eq!(err.inner(), Some(&Boom(404)));

    let unavailable = Chaos::new(ChaosConfig::new().with_error(1.0, || Boom(503))).unwrap();
    let err = pipeline.call(|| unavailable.call(op)).await.unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::Exhausted, 3));
    assert_eq!(calls.get(), 0);
    assert_eq!(
        cb.snapshot().consecutive_failures,
        4,
        "the breaker counted every injected failure"
    );
}

#[tokio::test(start_paused = true)]
async fn a_substitute_the_classifier_calls_a_failure_is_retried_and_counted() {
    let cb = breaker(10);
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 3))
        .classify(|result: &Result<u16, Boom>| match result {
            Ok(503) => Class::Transient,
            Ok(_) => Class::Success,
            Err(_) => Class::Transient,
        })
        .breaker(cb.clone());
    let chaos = Chaos::new(ChaosConfig::new().with_result(1.0, || 503_u16).with_seed(1)).unwrap();
    // Only the first two attempts meet the substitute.
    let switch = chaos.switch();
    let attempts = Counter::default();
    let status = pipeline
        .call(|| {
            if attempts.bump() == 3 {
                assert_eq!(cb.snapshot().consecutive_failures, 2, "both 503s counted");
                switch.disable();
            }
            chaos.call(|| async { Ok::<u16, Boom>(200) })
        })
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(attempts.get(), 3);
    assert_eq!(
        cb.snapshot().consecutive_failures,
        0,
        "the success reset the count"
    );
}

#[tokio::test(start_paused = true)]
async fn the_fallback_covers_an_injected_fault_and_not_the_healthy_call() {
    let pipeline = Pipeline::new()
        .attempt_timeout(AttemptTimeout::fixed(ms(500)))
        .unwrap()
        .fallback(|_err| async { 9.99 });
    let chaos = Chaos::new(
        ChaosConfig::new()
            .with_error(1.0, || Boom(1))
            .with_enabled(false),
    )
    .unwrap();
    let price = || pipeline.call(|| chaos.call(|| async { Ok::<f64, Boom>(12.50) }));
    assert_eq!(price().await.unwrap(), 12.50);
    chaos.switch().enable();
    assert_eq!(price().await.unwrap(), 9.99);
    chaos.switch().disable();
    assert_eq!(price().await.unwrap(), 12.50);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_draws_its_own_injection() {
    // Seeded: attempts draw keys 0, 1, 2, ... in order.
    let config = ChaosConfig::new().with_error(0.5, || Boom(0)).with_seed(11);
    let chaos = Chaos::new(config).unwrap();
    let twin = Chaos::new(config).unwrap();
    let errors_before_success = (0..)
        .map(|key| twin.decide_keyed(key))
        .take_while(|injection| injection.is_error())
        .count();
    assert!(
        errors_before_success < 5,
        "seed 11 must let the fifth attempt through"
    );
    let calls = Counter::default();
    let pipeline = Pipeline::new().retry(fixed(ms(10), 5));
    let value = pipeline
        .call(|| chaos.call(|| async { Ok::<_, Boom>(calls.bump()) }))
        .await
        .unwrap();
    assert_eq!(value, 1, "the dependency saw one call");
    assert_eq!(
        chaos.decide(),
        twin.decide_keyed(errors_before_success as u64 + 1),
        "one key per attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn call_with_chaos_puts_the_policy_innermost() {
    let calls = Counter::default();
    let cb = breaker(3);
    let pipeline = Pipeline::new()
        .retry(fixed(ms(10), 3))
        .retry_if(|e: &Boom| e.0 != 404)
        .breaker(cb.clone())
        .attempt_timeout(AttemptTimeout::fixed(ms(100)))
        .unwrap();
    let chaos = Chaos::new(
        ChaosConfig::new()
            .with_error(0.0, || Boom(404))
            .with_delay(1.0, Duration::from_secs(1)),
    )
    .unwrap();
    let op = || async { Ok::<_, Boom>(calls.bump()) };
    // Delayed past the attempt timeout, every attempt: timeouts, retried, counted.
    let start = Instant::now();
    let err = pipeline.call_with_chaos(&chaos, op).await.unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::Exhausted, 3));
    assert!(err.is_timeout());
    assert_eq!(start.elapsed(), ms(100 * 3 + 10 * 2));
    assert_eq!(cb.state(), State::Open, "three timeouts in a row");
    cb.reset();
    // A permanent injected error: classified by the pipeline's classifier, not retried.
    let switch = chaos.switch();
    switch.set_delay_rate(0.0).unwrap();
    switch.set_error_rate(1.0).unwrap();
    let err = pipeline.call_with_chaos(&chaos, op).await.unwrap_err();
    assert_eq!((err.reason(), err.attempts()), (StopReason::Permanent, 1));
    assert_eq!(err.into_inner(), Some(Boom(404)));
    switch.disable();
    assert_eq!(pipeline.call_with_chaos(&chaos, op).await.unwrap(), 1);
    assert_eq!(calls.get(), 1);
}

#[cfg(feature = "tower")]
mod tower_stack {
    use staunch::chaos::ChaosLayer;
    use staunch::deadline::Elapsed;
    use staunch::retry::{BoxError, Stopped};
    use tower::{Layer, Service, ServiceExt, service_fn};

    use super::*;

    /// A service that answers its request and counts the calls that reach it.
    fn echo(
        calls: &Counter,
    ) -> impl tower::Service<u32, Response = u32, Error = Boom, Future: Send> + Clone + use<> {
        let calls = calls.clone();
        service_fn(move |request: u32| {
            let calls = calls.clone();
            async move {
                calls.bump();
                Ok::<_, Boom>(request)
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn under_the_pipelines_layer_a_delay_times_out_and_an_error_is_counted() {
        let calls = Counter::default();
        let cb = breaker(3);
        let pipeline = Pipeline::new()
            .retry(fixed(ms(10), 2))
            .breaker(cb.clone())
            .attempt_timeout(AttemptTimeout::fixed(ms(100)))
            .unwrap();
        let chaos = Chaos::new(
            ChaosConfig::new()
                .with_delay(1.0, Duration::from_secs(1))
                .with_error(0.0, || Boom(500)),
        )
        .unwrap();
        let switch = chaos.switch();
        let svc = echo(&calls);
        let mut svc = pipeline.layer().layer(ChaosLayer::new(chaos).layer(svc));
        let err: BoxError = svc.ready().await.unwrap().call(1).await.unwrap_err();
        let stop = err.downcast_ref::<Stopped>().unwrap();
        assert_eq!((stop.reason(), stop.attempts()), (StopReason::Exhausted, 2));
        let source = std::error::Error::source(stop).unwrap();
        assert!(source.downcast_ref::<Elapsed>().is_some(), "{source}");
        assert_eq!(calls.get(), 0);

        switch.set_delay_rate(0.0).unwrap();
        switch.set_error_rate(1.0).unwrap();
        // The injected error is the third failure in a row: the retry meets an open circuit.
        let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
        let stop = err.downcast_ref::<Stopped>().unwrap();
        assert_eq!(
            (stop.reason(), stop.attempts()),
            (StopReason::CircuitOpen, 2)
        );
        assert_eq!(cb.state(), State::Open, "2 timeouts and an injected error");
        assert_eq!(calls.get(), 0);

        switch.disable();
        cb.reset();
        assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7);
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn layer_with_chaos_puts_the_policy_under_the_pipeline() {
        let calls = Counter::default();
        let pipeline = Pipeline::new()
            .attempt_timeout(AttemptTimeout::fixed(ms(100)))
            .unwrap()
            .fallback(|_err| async { 0 });
        let chaos = Chaos::new(ChaosConfig::new().with_delay(1.0, Duration::from_secs(1))).unwrap();
        let switch = chaos.switch();
        let svc = echo(&calls);
        let mut svc = pipeline.layer_with_chaos(chaos).layer(svc);
        let start = Instant::now();
        assert_eq!(
            svc.ready().await.unwrap().call(7).await.unwrap(),
            0,
            "the fallback"
        );
        assert_eq!(
            start.elapsed(),
            ms(100),
            "the delay timed out inside the attempt"
        );
        assert_eq!(calls.get(), 0);
        switch.disable();
        assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7);
        assert_eq!(calls.get(), 1);
    }
}
