//! The HTTP layers over `tower-test` mocks, in paused time.

use std::io;
use std::time::Duration;

use http::{HeaderName, Method, Request, Response};
use staunch::http::{
    CloneBody, HttpClassifier, IdempotencyGate, PropagateDeadline, PropagateDeadlineLayer,
    ReceiveDeadlineLayer, Replay, is_connect_failure,
};
use staunch::retry::{BoxError, RetryLayer, RetryService, Stopped};
use staunch::{Deadline, StopReason};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};
use tower_test::mock::{self, Handle, Mock};

use crate::support::{http_retry, ms};

type Req = Request<String>;
type Res = Response<()>;

type Client = RetryService<
    PropagateDeadline<Mock<Req, Res>>,
    HttpClassifier,
    IdempotencyGate<CloneBody, fn(&BoxError) -> bool>,
>;

/// The mock's errors are boxed, so the gate's connect rule looks through the box.
fn boxed_connect_failure(error: &BoxError) -> bool {
    is_connect_failure(&**error)
}

/// retry(HttpClassifier, IdempotencyGate) over deadline propagation over a mock.
fn client(max_attempts: u32, delay: Duration) -> (Client, Handle<Req, Res>) {
    let (mock, handle): (Mock<Req, Res>, _) = mock::pair();
    let gate =
        IdempotencyGate::new().with_connect_failure(boxed_connect_failure as fn(&BoxError) -> bool);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(http_retry(delay, max_attempts)).with_retry_request(gate))
        .layer(PropagateDeadlineLayer::new())
        .service(mock);
    (service, handle)
}

fn request(method: Method) -> Req {
    Request::builder()
        .method(method)
        .uri("http://dependency/orders")
        .body(String::from("{}"))
        .unwrap()
}

fn status(code: u16) -> Res {
    Response::builder().status(code).body(()).unwrap()
}

fn call<S>(mut service: S, request: Req) -> tokio::task::JoinHandle<Result<Res, BoxError>>
where
    S: Service<Req, Response = Res, Error = BoxError> + Send + 'static,
    S::Future: Send,
{
    tokio::spawn(async move { service.ready().await?.call(request).await })
}

/// Answers the next request, returning it.
async fn answer(handle: &mut Handle<Req, Res>, outcome: Result<Res, io::ErrorKind>) -> Req {
    let (request, respond) = handle.next_request().await.expect("a request");
    match outcome {
        Ok(response) => respond.send_response(response),
        Err(kind) => respond.send_error(io::Error::from(kind)),
    }
    request
}

fn stopped(err: &BoxError) -> &Stopped {
    err.downcast_ref::<Stopped>().expect("a Stopped")
}

#[tokio::test(start_paused = true)]
async fn a_get_is_retried_through_5xx_until_it_succeeds() {
    let (service, mut handle) = client(4, ms(10));
    let call = call(service, request(Method::GET));
    answer(&mut handle, Ok(status(500))).await;
    answer(&mut handle, Ok(status(502))).await;
    answer(&mut handle, Ok(status(200))).await;
    assert_eq!(call.await.unwrap().unwrap().status(), 200);
}

fn with_pushback(code: u16, value: &str) -> Res {
    Response::builder()
        .status(code)
        .header("grpc-retry-pushback-ms", value)
        .body(())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn grpc_pushback_sets_the_wait_or_stops_the_retries() {
    let (service, mut handle) = client(4, ms(10));
    let start = Instant::now();
    let hinted = call(service, request(Method::GET));
    answer(&mut handle, Ok(with_pushback(503, "1500"))).await;
    answer(&mut handle, Ok(status(200))).await;
    assert_eq!(hinted.await.unwrap().unwrap().status(), 200);
    assert_eq!(start.elapsed(), ms(1500), "waited as the server asked");

    // A negative pushback: the server asks not to retry at all.
    let (service, mut handle) = client(4, ms(10));
    let refused = call(service, request(Method::GET));
    answer(&mut handle, Ok(with_pushback(503, "-1"))).await;
    let response = refused.await.unwrap().unwrap();
    assert_eq!(
        response.status(),
        503,
        "returned as it is, after one attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn each_resent_request_carries_its_resend_count() {
    use staunch::http::ResendCount;

    let (service, mut handle) = client(3, ms(10));
    let call = call(service, request(Method::GET));
    let counts = [
        answer(&mut handle, Ok(status(503))).await,
        answer(&mut handle, Ok(status(503))).await,
        answer(&mut handle, Ok(status(200))).await,
    ]
    .map(|sent| sent.extensions().get::<ResendCount>().copied());
    assert_eq!(call.await.unwrap().unwrap().status(), 200);
    // OpenTelemetry's `http.request.resend_count`: absent on the first send.
    assert_eq!(counts, [None, Some(ResendCount(1)), Some(ResendCount(2))]);
}

#[tokio::test(start_paused = true)]
async fn a_post_answered_503_is_not_sent_again() {
    let (service, mut handle) = client(4, ms(10));
    let call = call(service, request(Method::POST));
    answer(&mut handle, Ok(status(503))).await;
    // Had the POST been retried, the call would be waiting on a second answer.
    assert_eq!(call.await.unwrap().unwrap().status(), 503);
}

#[tokio::test(start_paused = true)]
async fn a_post_that_never_reached_the_server_is_sent_again() {
    let (service, mut handle) = client(4, ms(10));
    let call = call(service, request(Method::POST));
    answer(&mut handle, Err(io::ErrorKind::ConnectionRefused)).await;
    let second = answer(&mut handle, Ok(status(201))).await;
    assert_eq!(second.method(), Method::POST);
    assert_eq!(second.body(), "{}", "the body was copied");
    assert_eq!(call.await.unwrap().unwrap().status(), 201);
}

#[tokio::test(start_paused = true)]
async fn a_post_whose_connection_reset_is_not_sent_again() {
    let (service, mut handle) = client(4, ms(10));
    let call = call(service, request(Method::POST));
    answer(&mut handle, Err(io::ErrorKind::ConnectionReset)).await;
    let err = call.await.unwrap().unwrap_err();
    let stopped = stopped(&err);
    assert_eq!(
        (stopped.reason(), stopped.attempts()),
        (StopReason::Permanent, 1)
    );
    // The client's error stays reachable.
    let source = std::error::Error::source(stopped).expect("the last error");
    assert!(source.to_string().contains("reset") || format!("{source:?}").contains("Reset"));
}

#[tokio::test(start_paused = true)]
async fn per_request_replay_overrides_the_method() {
    // A POST with an idempotency key the server deduplicates on: safe.
    let (service, mut handle) = client(4, ms(10));
    let mut keyed = request(Method::POST);
    keyed.extensions_mut().insert(Replay::Safe);
    let call_keyed = call(service, keyed);
    answer(&mut handle, Ok(status(503))).await;
    answer(&mut handle, Ok(status(200))).await;
    assert_eq!(call_keyed.await.unwrap().unwrap().status(), 200);

    // A GET with side effects: never.
    let (service, mut handle) = client(4, ms(10));
    let mut fragile = request(Method::GET);
    fragile.extensions_mut().insert(Replay::Never);
    let call_fragile = call(service, fragile);
    answer(&mut handle, Err(io::ErrorKind::ConnectionRefused)).await;
    let err = call_fragile.await.unwrap().unwrap_err();
    assert_eq!(stopped(&err).attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_hint_sets_the_least_wait() {
    let (service, mut handle) = client(3, ms(10));
    let call = call(service, request(Method::GET));
    let limited = Response::builder()
        .status(429)
        .header("retry-after", "3")
        .body(())
        .unwrap();
    answer(&mut handle, Ok(limited)).await;
    let asked = Instant::now();
    answer(&mut handle, Ok(status(200))).await;
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    assert!(waited < Duration::from_secs(3) + ms(10), "{waited:?}");
    assert_eq!(call.await.unwrap().unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_ceiling_ends_the_call_with_the_response() {
    let (service, mut handle) = client(3, ms(10));
    let call = call(service, request(Method::GET));
    let busy = Response::builder()
        .status(503)
        .header("retry-after", "99999999999999999999")
        .body(())
        .unwrap();
    answer(&mut handle, Ok(busy)).await;
    // max_retry_after is 60 s; the clamped hint (a day) is above it: no second attempt.
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.status(), 503);
}

#[tokio::test(start_paused = true)]
async fn every_attempt_carries_the_time_then_left() {
    let (service, mut handle) = client(3, Duration::from_secs(1));
    let mut service = service;
    let call = tokio::spawn(
        Deadline::after(Duration::from_secs(5))
            .scope(async move { service.ready().await?.call(request(Method::GET)).await }),
    );
    let first = answer(&mut handle, Ok(status(503))).await;
    let second = answer(&mut handle, Ok(status(200))).await;
    assert_eq!(first.headers()["grpc-timeout"], "5000000u");
    assert_eq!(
        second.headers()["grpc-timeout"],
        "4000000u",
        "one second of backoff later"
    );
    call.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_client_layer_takes_an_explicit_deadline_or_writes_nothing() {
    let (mock, mut handle): (Mock<Req, Res>, _) = mock::pair();
    let mut service = PropagateDeadlineLayer::new()
        .with_header_name(HeaderName::from_static("x-deadline"))
        .layer(mock);

    let mut explicit = request(Method::GET);
    explicit
        .extensions_mut()
        .insert(Deadline::after(Duration::from_millis(250)));
    let response = service.ready().await.unwrap().call(explicit);
    let (seen, respond) = handle.next_request().await.unwrap();
    respond.send_response(status(200));
    response.await.unwrap();
    assert_eq!(seen.headers()["x-deadline"], "250000u");
    assert!(!seen.headers().contains_key("grpc-timeout"));

    // The tighter of the explicit deadline and the one in scope.
    let tight = Deadline::after(Duration::from_millis(40));
    let mut loose = request(Method::GET);
    loose
        .extensions_mut()
        .insert(Deadline::after(Duration::from_secs(9)));
    service.ready().await.unwrap();
    let response = tight.scope_sync(|| service.call(loose));
    let (seen, respond) = handle.next_request().await.unwrap();
    respond.send_response(status(200));
    response.await.unwrap();
    assert_eq!(seen.headers()["x-deadline"], "40000000n");

    let response = service.ready().await.unwrap().call(request(Method::GET));
    let (seen, respond) = handle.next_request().await.unwrap();
    respond.send_response(status(200));
    response.await.unwrap();
    assert!(
        !seen.headers().contains_key("x-deadline"),
        "no deadline, no header"
    );
}

#[tokio::test(start_paused = true)]
async fn the_server_layer_scopes_the_handler_clamped_and_ignores_garbage() {
    let handler = service_fn(|_: Req| async {
        let before = Deadline::current().map(|d| d.remaining());
        tokio::time::sleep(ms(100)).await;
        let after = Deadline::current().map(|d| d.remaining());
        Ok::<_, BoxError>((before, after))
    });
    let server = ServiceBuilder::new()
        .layer(ReceiveDeadlineLayer::new().with_max_timeout(Duration::from_secs(2)))
        .service(handler);
    let with = |value: &str| {
        let mut request = request(Method::GET);
        request
            .headers_mut()
            .insert("grpc-timeout", value.parse().unwrap());
        request
    };
    let secs = |s: f64| Some(Duration::from_secs_f64(s));

    let (before, after) = server.clone().oneshot(with("1S")).await.unwrap();
    assert_eq!(
        (before, after),
        (secs(1.0), secs(0.9)),
        "the scope spans awaits"
    );

    let (before, _) = server.clone().oneshot(with("99999999H")).await.unwrap();
    assert_eq!(before, secs(2.0), "clamped to the server's maximum");

    for garbage in ["", "soon", "-1S", "123456789S", "1.5S", "5s"] {
        let (before, _) = server.clone().oneshot(with(garbage)).await.unwrap();
        assert_eq!(before, None, "{garbage:?} is ignored");
    }
    let (before, _) = server.clone().oneshot(request(Method::GET)).await.unwrap();
    assert_eq!(before, None);
}

#[tokio::test(start_paused = true)]
async fn the_classifier_alone_drives_a_plain_retry_layer() {
    // Without the gate (CloneRequest), a POST's 503 is retried like any other failure: the gate
    // is what makes methods matter.
    let (mock, mut handle): (Mock<Req, Res>, _) = mock::pair();
    let service = RetryLayer::new(http_retry(ms(10), 2)).layer(mock);
    let call = call(service, request(Method::POST));
    answer(&mut handle, Ok(status(503))).await;
    answer(&mut handle, Ok(status(200))).await;
    assert_eq!(call.await.unwrap().unwrap().status(), 200);
    let _ = HttpClassifier::new();
}

#[test]
fn public_types_are_send_sync_and_the_futures_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send_sync_copy<T: Send + Sync + Copy>() {}
    send_sync_copy::<HttpClassifier>();
    send_sync_copy::<IdempotencyGate>();
    send_sync_copy::<Replay>();
    send_sync_copy::<staunch::http::TimeoutValue>();
    send_sync::<PropagateDeadlineLayer>();
    send_sync::<ReceiveDeadlineLayer>();
    send_sync::<PropagateDeadline<Mock<Req, Res>>>();
    send_sync::<staunch::http::ReceiveDeadline<Mock<Req, Res>>>();
    send_sync::<Client>();

    fn send_future<F: std::future::Future + Send>(_: &F) {}
    // Compile-time only: a mock must be polled ready before it is called.
    let _ = |mut client: Client| send_future(&client.call(request(Method::GET)));
    let mut server = ReceiveDeadlineLayer::new().layer(service_fn(|_: Req| async {
        Ok::<_, BoxError>(status(200))
    }));
    let future = server.call(request(Method::GET));
    send_future(&future);
}
