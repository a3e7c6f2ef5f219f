//! End to end over 127.0.0.1: a real hyper server injecting faults (statuses, Retry-After,
//! delays, dropped connections) behind `ReceiveDeadlineLayer`, and a real hyper-util client
//! behind retry, `HttpClassifier`, `IdempotencyGate` and `PropagateDeadlineLayer`.
//!
//! Real sockets need the real clock, so these tests run in ordinary time with millisecond
//! backoff. Nothing asserts a wall duration: every wait ends on a counted request, and the
//! guard below only turns a hang into a failure.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::Full;
use staunch::http::decode_timeout;
use staunch::retry::{BoxError, Stopped};
use staunch::{Deadline, StopReason};
use tower::{Service, ServiceExt, service_fn};

use crate::support::{Fault, Server, closed_port, http_retry, hyper_client, ms, request, stack};

/// Fails the test instead of hanging it; never part of what a test checks.
async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("the exchange finished")
}

async fn send<S>(
    service: &mut S,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, BoxError>
where
    S: Service<
            Request<Full<Bytes>>,
            Response = http::Response<hyper::body::Incoming>,
            Error = BoxError,
        >,
{
    bounded(async { service.ready().await?.call(request).await }).await
}

fn stopped(err: &BoxError) -> &Stopped {
    err.downcast_ref::<Stopped>()
        .unwrap_or_else(|| panic!("a Stopped, got {err:?}"))
}

#[tokio::test]
async fn a_get_is_retried_through_500s_until_it_succeeds() {
    let server = Server::start(
        vec![Fault::status(500), Fault::status(502), Fault::status(200)],
        Duration::from_secs(30),
    )
    .await;
    let mut client = stack(http_retry(ms(1), 4), hyper_client());
    let response = send(&mut client, request(Method::GET, &server.uri("/items")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn retry_after_zero_is_retried_and_a_hint_beyond_the_ceiling_is_not() {
    let server = Server::start(
        vec![
            Fault::Status(503, vec![("retry-after", "0".into())]),
            Fault::status(200),
            Fault::Status(503, vec![("retry-after", "120".into())]),
        ],
        Duration::from_secs(30),
    )
    .await;
    let mut client = stack(http_retry(ms(1), 4), hyper_client());
    let response = send(&mut client, request(Method::GET, &server.uri("/")))
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), server.requests()), (200, 2));

    // 120 s > max_retry_after (60 s): the call ends with the server's answer, not a retry.
    let response = send(&mut client, request(Method::GET, &server.uri("/")))
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), server.requests()), (503, 3));
}

#[tokio::test]
async fn a_429_http_date_is_measured_from_the_servers_date_header() {
    // The server's clock says 1994. Against our clock both dates are long past (zero wait);
    // measured from the server's Date, the second asks for an hour.
    let date = || ("date", "Sun, 06 Nov 1994 08:49:37 GMT".to_owned());
    let server = Server::start(
        vec![
            Fault::Status(
                429,
                vec![
                    date(),
                    ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT".into()),
                ],
            ),
            Fault::status(200),
            Fault::Status(
                429,
                vec![
                    date(),
                    ("retry-after", "Sun, 06 Nov 1994 09:49:37 GMT".into()),
                ],
            ),
        ],
        Duration::from_secs(30),
    )
    .await;
    let mut client = stack(http_retry(ms(1), 4), hyper_client());
    let response = send(&mut client, request(Method::GET, &server.uri("/")))
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), server.requests()), (200, 2));
    let response = send(&mut client, request(Method::GET, &server.uri("/")))
        .await
        .unwrap();
    assert_eq!(
        (response.status().as_u16(), server.requests()),
        (429, 3),
        "an hour is beyond the ceiling"
    );
}

#[tokio::test]
async fn a_dropped_connection_is_retried_for_a_get_but_not_for_a_post() {
    let server = Server::start(
        vec![Fault::Drop, Fault::status(200), Fault::Drop],
        Duration::from_secs(30),
    )
    .await;
    let mut client = stack(http_retry(ms(1), 4), hyper_client());
    let response = send(&mut client, request(Method::GET, &server.uri("/")))
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), server.requests()), (200, 2));

    // The server had the POST when the connection died: it may have acted on it.
    let err = send(&mut client, request(Method::POST, &server.uri("/orders")))
        .await
        .unwrap_err();
    let stopped = stopped(&err);
    assert_eq!(
        (stopped.reason(), stopped.attempts()),
        (StopReason::Permanent, 1)
    );
    assert_eq!(server.requests(), 3, "the POST arrived exactly once");
    let source = std::error::Error::source(stopped).expect("the client's error");
    assert!(
        !staunch::http::is_connect_failure(source),
        "a connection lost after sending is not a connect failure: {source:?}"
    );
    let methods: Vec<Method> = server.seen().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, [Method::GET, Method::GET, Method::POST]);
}

#[tokio::test]
async fn a_post_to_a_closed_port_is_retried_because_it_never_arrived() {
    let server = Server::start(vec![Fault::status(201)], Duration::from_secs(30)).await;
    let closed = closed_port().await;
    // The first attempt goes to a port where nothing listens; the next ones to the server.
    let attempts = Arc::new(AtomicU32::new(0));
    let client = hyper_client();
    let routed = service_fn({
        let attempts = attempts.clone();
        move |mut request: Request<Full<Bytes>>| {
            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                let path = request.uri().path().to_owned();
                *request.uri_mut() = Uri::try_from(format!("http://{closed}{path}")).unwrap();
            }
            client.request(request)
        }
    });
    let mut client = stack(http_retry(ms(1), 3), routed);
    let response = send(&mut client, request(Method::POST, &server.uri("/orders")))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(server.requests(), 1, "the server saw the POST once");

    // With nothing listening at all, every attempt is refused and every one is retried.
    let mut nowhere = stack(http_retry(ms(1), 3), hyper_client());
    let uri = format!("http://{closed}/orders");
    let err = send(&mut nowhere, request(Method::POST, &uri))
        .await
        .unwrap_err();
    let stopped = stopped(&err);
    assert_eq!(
        (stopped.reason(), stopped.attempts()),
        (StopReason::Exhausted, 3)
    );
    let source = std::error::Error::source(stopped).expect("the client's error");
    assert!(
        staunch::http::is_connect_failure(source),
        "hyper-util's error is recognised: {source:?}"
    );
}

#[tokio::test]
async fn the_server_runs_under_the_callers_deadline_clamped_to_its_maximum() {
    let strict = Server::start(vec![], Duration::from_secs(2)).await;
    let lenient = Server::start(vec![], Duration::from_secs(60)).await;
    let mut client = stack(http_retry(ms(1), 2), hyper_client());
    for server in [&strict, &lenient] {
        let request = request(Method::GET, &server.uri("/"));
        Deadline::after(Duration::from_secs(5))
            .scope(send(&mut client, request))
            .await
            .unwrap();
    }
    for (server, max) in [(&strict, 2), (&lenient, 5)] {
        let seen = server.seen().pop().expect("a request");
        let header = seen.timeout_header.expect("the client sent its deadline");
        let sent = decode_timeout(header.as_bytes()).expect("a valid value");
        assert!(sent <= Duration::from_secs(5), "{header}");
        let left = seen
            .deadline_left
            .expect("the handler ran under a deadline");
        assert!(left <= Duration::from_secs(max), "{left:?} > {max} s");
        assert!(left <= sent, "{left:?} > {sent:?}");
    }

    // Without a deadline, no header and no scope.
    send(&mut client, request(Method::GET, &lenient.uri("/")))
        .await
        .unwrap();
    let seen = lenient.seen().pop().unwrap();
    assert_eq!((seen.timeout_header, seen.deadline_left), (None, None));
}

#[tokio::test]
async fn a_slow_answer_arrives_and_the_servers_deadline_runs_down_meanwhile() {
    let server = Server::start(vec![Fault::Delay(ms(30), 200)], Duration::from_secs(30)).await;
    let mut client = stack(http_retry(ms(1), 2), hyper_client());
    let request = request(Method::GET, &server.uri("/slow"));
    let response = Deadline::after(Duration::from_secs(10))
        .scope(send(&mut client, request))
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), server.requests()), (200, 1));
    let seen = server.seen().pop().unwrap();
    let (before, after) = (
        seen.deadline_left.unwrap(),
        seen.deadline_left_after_delay.unwrap(),
    );
    assert!(after < before, "{after:?} !< {before:?}");
}
