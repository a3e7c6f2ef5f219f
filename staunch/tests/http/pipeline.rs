//! The whole pipeline as a tower layer over 127.0.0.1: a real hyper-util client behind
//! `PipelineLayer` (retry with HTTP classification and the idempotency gate, a breaker, attempt
//! timeouts) and `PropagateDeadlineLayer`, against the fault-injecting server of `support`.
//!
//! Real sockets need the real clock: nothing here asserts a duration; every wait ends on a
//! counted request, and `bounded` only turns a hang into a failure.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use staunch::breaker::{BreakerConfig, CircuitBreaker, CircuitOpen, State};
use staunch::deadline::AttemptTimeout;
use staunch::http::{HttpClassifier, IdempotencyGate, PropagateDeadlineLayer, decode_timeout};
use staunch::retry::{BoxError, Stopped};
use staunch::{Deadline, Pipeline, StopReason};
use tower::{Layer, Service, ServiceExt};

use crate::support::{Fault, HyperClient, Server, http_retry, hyper_client, ms, request};

type Response = http::Response<hyper::body::Incoming>;

async fn send<S>(service: &mut S, request: Request<Full<Bytes>>) -> Result<Response, BoxError>
where
    S: Service<Request<Full<Bytes>>, Response = Response, Error = BoxError>,
{
    tokio::time::timeout(Duration::from_secs(30), async {
        service.ready().await?.call(request).await
    })
    .await
    .expect("the exchange finished")
}

fn client(
    pipeline: Pipeline<HttpClassifier>,
) -> impl Service<Request<Full<Bytes>>, Response = Response, Error = BoxError> {
    let inner: HyperClient = hyper_client();
    pipeline
        .layer()
        .with_retry_request(IdempotencyGate::new())
        .layer(PropagateDeadlineLayer::new().layer(inner))
}

fn stopped(err: &BoxError) -> &Stopped {
    err.downcast_ref::<Stopped>()
        .unwrap_or_else(|| panic!("a Stopped, got {err:?}"))
}

#[tokio::test]
async fn a_slow_server_times_out_trips_the_breaker_and_stops_the_retries() {
    let slow = Fault::Delay(Duration::from_secs(2), 200);
    let server = Server::start(
        vec![slow.clone(), slow.clone(), slow],
        Duration::from_secs(30),
    )
    .await;
    let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(2)).unwrap();
    let pipeline = Pipeline::new()
        .retry(http_retry(ms(1), 5))
        .breaker(breaker.clone())
        .attempt_timeout(AttemptTimeout::fixed(ms(100)))
        .unwrap();
    let mut client = client(pipeline);
    let err = send(&mut client, request(Method::GET, &server.uri("/price")))
        .await
        .unwrap_err();
    let stop = stopped(&err);
    assert_eq!(
        (stop.reason(), stop.attempts()),
        (StopReason::CircuitOpen, 3)
    );
    let source = std::error::Error::source(stop).unwrap();
    assert!(source.downcast_ref::<CircuitOpen>().is_some(), "{source}");
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        server.requests(),
        2,
        "the third attempt never left the client"
    );
}

#[tokio::test]
async fn a_post_whose_connection_dropped_is_not_sent_again_but_a_get_is() {
    let server = Server::start(
        vec![Fault::Drop, Fault::Drop, Fault::status(200)],
        Duration::from_secs(30),
    )
    .await;
    let pipeline = Pipeline::new().retry(http_retry(ms(1), 3));
    let mut client = client(pipeline);
    let err = send(&mut client, request(Method::POST, &server.uri("/orders")))
        .await
        .unwrap_err();
    assert_eq!(stopped(&err).reason(), StopReason::Permanent);
    assert_eq!(server.requests(), 1, "the POST reached the server once");

    let response = send(&mut client, request(Method::GET, &server.uri("/orders")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        server.requests(),
        3,
        "the GET was sent again after its connection dropped"
    );
}

#[tokio::test]
async fn each_attempt_sends_its_own_limit_as_the_deadline() {
    let server = Server::start(
        vec![Fault::status(503), Fault::status(200)],
        Duration::from_secs(30),
    )
    .await;
    let pipeline = Pipeline::new()
        .retry(http_retry(ms(1), 3))
        .attempt_timeout(AttemptTimeout::fixed(ms(800)))
        .unwrap();
    let mut client = client(pipeline);
    let response = Deadline::after(Duration::from_secs(10))
        .scope(async { send(&mut client, request(Method::GET, &server.uri("/stock"))).await })
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    for request in seen {
        let header = request.timeout_header.expect("a deadline header");
        let sent = decode_timeout(header.as_bytes()).expect("a valid grpc-timeout");
        assert!(
            sent <= ms(800),
            "the attempt's cap, not the request's 10 s: {sent:?}"
        );
        assert!(sent > ms(700), "cut from the attempt's limit: {sent:?}");
    }
}
