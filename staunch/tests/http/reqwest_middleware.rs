//! The `Staunch` reqwest middleware: over real loopback HTTP (a hyper server on 127.0.0.1 and
//! reqwest's own client), and in paused time against an in-memory server that is itself a
//! reqwest-middleware `Middleware`, for the rules that are about time.
//!
//! The loopback tests run in ordinary time with millisecond backoff (real sockets need the real
//! clock) and assert what was sent and received, never how long it took.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Extensions, Method};
use http_body_util::Full;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use staunch::backoff::{Backoff, Jitter};
use staunch::breaker::{BreakerConfig, CircuitBreaker, CircuitOpen, State};
use staunch::deadline::{AttemptTimeout, Elapsed};
use staunch::http::{HttpClassifier, NotRetried, Replay, Staunch, decode_timeout};
use staunch::retry::{BudgetConfig, RetryBudget, Stopped};
use staunch::{Deadline, Pipeline, Retry, RetryConfig, StopReason};
use tokio::time::Instant;

use crate::support::{Fault, Server, closed_port, http_retry, ms};

/// Fails the test instead of hanging it; never part of what a test checks.
async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("the exchange finished")
}

/// A loopback server answering from `script` (then 200s), with a generous maximum deadline.
async fn serve(script: Vec<Fault>) -> Server {
    Server::start(script, Duration::from_secs(30)).await
}

fn retrying(max_attempts: u32) -> Pipeline<HttpClassifier> {
    Pipeline::new().retry(http_retry(ms(1), max_attempts))
}

fn client(staunch: Staunch<HttpClassifier>) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(staunch)
        .build()
}

fn anyhow_of(err: &reqwest_middleware::Error) -> &anyhow::Error {
    match err {
        reqwest_middleware::Error::Middleware(err) => err,
        reqwest_middleware::Error::Reqwest(err) => panic!("staunch's error, got {err:?}"),
    }
}

fn stopped(err: &reqwest_middleware::Error) -> &Stopped {
    anyhow_of(err)
        .downcast_ref::<Stopped>()
        .unwrap_or_else(|| panic!("a Stopped, got {err:?}"))
}

fn not_retried(err: &reqwest_middleware::Error) -> Option<NotRetried> {
    anyhow_of(err).downcast_ref::<NotRetried>().copied()
}

/// Why the call stopped, after how many attempts, and what the request had to do with it.
fn stop(err: &reqwest_middleware::Error) -> (StopReason, u32, Option<NotRetried>) {
    let stopped = stopped(err);
    (stopped.reason(), stopped.attempts(), not_retried(err))
}

fn last_failure(stopped: &Stopped) -> &(dyn std::error::Error + 'static) {
    std::error::Error::source(stopped).expect("the last failure")
}

fn seconds(header: Option<&str>) -> Duration {
    decode_timeout(header.expect("a deadline header").as_bytes()).expect("a valid value")
}

// ---- over loopback ----

#[tokio::test]
async fn a_get_is_retried_through_503s_and_retry_after_zero() {
    let server = serve(vec![
        Fault::Status(503, vec![("retry-after", "0".into())]),
        Fault::status(503),
        Fault::status(200),
    ])
    .await;
    let client = client(Staunch::new(retrying(4)));
    let response = bounded(client.get(server.uri("/items")).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn a_retry_after_beyond_the_ceiling_returns_the_servers_answer() {
    // 120 s > max_retry_after (60 s): the hint was read, and not waited for.
    let server = serve(vec![Fault::Status(
        503,
        vec![("retry-after", "120".into())],
    )])
    .await;
    let client = client(Staunch::new(retrying(4)));
    let response = bounded(client.get(server.uri("/")).send()).await.unwrap();
    assert_eq!((response.status().as_u16(), server.requests()), (503, 1));
}

#[tokio::test]
async fn a_post_that_got_a_503_is_sent_once_unless_marked_safe() {
    let server = serve(vec![
        Fault::status(503),
        Fault::status(503),
        Fault::status(201),
    ])
    .await;
    let client = client(Staunch::new(retrying(4)));
    let response = bounded(client.post(server.uri("/orders")).body("{}").send())
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), server.requests()), (503, 1));

    // A POST the server deduplicates (an idempotency key) may go again.
    let response = bounded(
        client
            .post(server.uri("/orders"))
            .header("idempotency-key", "7f3a")
            .with_extension(Replay::Safe)
            .body("{}")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!((response.status().as_u16(), server.requests()), (201, 3));
    let methods: Vec<Method> = server.seen().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, [Method::POST, Method::POST, Method::POST]);
}

#[tokio::test]
async fn a_post_whose_connection_dropped_is_not_retried_and_the_error_says_why() {
    let server = serve(vec![Fault::Drop]).await;
    let client = client(Staunch::new(retrying(4)));
    let err = bounded(client.post(server.uri("/orders")).body("{}").send())
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 1, "the server had the POST once");
    assert_eq!(
        stop(&err),
        (StopReason::Permanent, 1, Some(NotRetried::MaybeSent))
    );
    assert!(err.to_string().contains("not idempotent"), "{err}");
    let source = last_failure(stopped(&err));
    let reqwest = source
        .downcast_ref::<reqwest_middleware::Error>()
        .expect("the client's error is the source");
    assert!(!reqwest.is_connect(), "{reqwest:?}");
}

#[tokio::test]
async fn a_post_to_a_closed_port_is_retried_because_it_never_arrived() {
    let closed = closed_port().await;
    let client = client(Staunch::new(retrying(3)));
    let err = bounded(
        client
            .post(format!("http://{closed}/orders"))
            .body("{}")
            .send(),
    )
    .await
    .unwrap_err();
    assert_eq!(stop(&err), (StopReason::Exhausted, 3, None));
    let source = last_failure(stopped(&err));
    assert!(staunch::http::is_connect_failure(source), "{source:?}");
}

fn streaming(text: &'static str) -> reqwest::Body {
    // `wrap` makes a streaming body even of bytes in memory: `try_clone` is `None`.
    reqwest::Body::wrap(Full::new(Bytes::from_static(text.as_bytes())))
}

#[tokio::test]
async fn a_streaming_body_is_sent_once_and_the_error_says_why() {
    let server = serve(vec![Fault::Drop, Fault::status(200)]).await;
    let client = client(Staunch::new(retrying(4)));
    // PUT is idempotent: only the body keeps it from going again.
    let err = bounded(
        client
            .put(server.uri("/blob"))
            .body(streaming("chunk"))
            .send(),
    )
    .await
    .unwrap_err();
    assert_eq!(server.requests(), 1, "sent once");
    assert_eq!(
        stop(&err),
        (StopReason::Permanent, 1, Some(NotRetried::StreamingBody))
    );
    assert!(err.to_string().contains("stream"), "{err}");

    // The same request with a body from bytes is retried through the same failure.
    let server = serve(vec![Fault::Drop, Fault::status(200)]).await;
    let response = bounded(client.put(server.uri("/blob")).body("chunk").send())
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), server.requests()), (200, 2));

    // And a streaming body that succeeds is simply sent.
    let response = bounded(
        client
            .put(server.uri("/blob"))
            .body(streaming("chunk"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!((response.status().as_u16(), server.requests()), (200, 3));
}

#[tokio::test]
async fn the_breaker_opens_and_then_refuses_without_sending() {
    let server = serve(vec![
        Fault::status(503),
        Fault::status(503),
        Fault::status(503),
    ])
    .await;
    let breaker = CircuitBreaker::new(
        BreakerConfig::consecutive_failures(2).with_open_duration(Duration::from_secs(60)),
    )
    .unwrap();
    let staunch = Staunch::new(retrying(4).breaker(breaker.clone()));
    let client = client(staunch);

    // Two 503s trip it; the third attempt is refused, which ends the call at once.
    let err = bounded(client.get(server.uri("/")).send())
        .await
        .unwrap_err();
    assert_eq!(stop(&err), (StopReason::CircuitOpen, 3, None));
    assert!(
        last_failure(stopped(&err))
            .downcast_ref::<CircuitOpen>()
            .is_some()
    );
    assert_eq!(server.requests(), 2);

    let err = bounded(client.get(server.uri("/")).send())
        .await
        .unwrap_err();
    assert_eq!(stopped(&err).reason(), StopReason::CircuitOpen);
    assert_eq!(server.requests(), 2, "an open circuit sends nothing");
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test]
async fn the_deadline_arrives_at_the_server_as_grpc_timeout() {
    let server = serve(Vec::new()).await;
    let client = client(Staunch::new(retrying(2)));

    // The deadline in scope.
    let response =
        bounded(Deadline::after(Duration::from_secs(5)).scope(client.get(server.uri("/")).send()))
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
    // A deadline of this request's own, as an extension.
    bounded(
        client
            .get(server.uri("/"))
            .with_extension(Deadline::after(Duration::from_secs(3)))
            .send(),
    )
    .await
    .unwrap();
    // No deadline: no header.
    bounded(client.get(server.uri("/")).send()).await.unwrap();

    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    let first = seconds(seen[0].timeout_header.as_deref());
    assert!(
        first <= Duration::from_secs(5) && first > Duration::ZERO,
        "{first:?}"
    );
    let second = seconds(seen[1].timeout_header.as_deref());
    assert!(
        second <= Duration::from_secs(3) && second > Duration::ZERO,
        "{second:?}"
    );
    assert_eq!(seen[2].timeout_header, None);
    // The server's ReceiveDeadlineLayer ran the handler under it.
    assert!(seen[0].deadline_left.is_some_and(|left| left <= first));
    assert_eq!(seen[2].deadline_left, None);
}

#[tokio::test]
async fn an_attempt_timeout_is_what_the_header_carries_and_the_header_can_be_renamed() {
    let server = serve(Vec::new()).await;
    let pipeline = retrying(2)
        .attempt_timeout(AttemptTimeout::fixed(Duration::from_secs(2)))
        .unwrap();
    let timed = client(Staunch::new(pipeline.clone()));
    bounded(Deadline::after(Duration::from_secs(60)).scope(timed.get(server.uri("/")).send()))
        .await
        .unwrap();
    let sent = seconds(server.seen()[0].timeout_header.as_deref());
    assert!(sent <= Duration::from_secs(2), "{sent:?}");

    let renamed = Staunch::new(pipeline.clone())
        .with_deadline_header(http::HeaderName::from_static("x-deadline"))
        .unwrap();
    let silent = Staunch::new(pipeline).without_deadline_header();
    for staunch in [renamed, silent] {
        bounded(client(staunch).get(server.uri("/")).send())
            .await
            .unwrap();
    }
    let seen = server.seen();
    assert_eq!(
        (
            seen[1].timeout_header.as_deref(),
            seen[2].timeout_header.as_deref()
        ),
        (None, None)
    );
}

// ---- in memory, in paused time ----

/// What the in-memory server answers.
enum Reply {
    Status(u16, &'static [(&'static str, &'static str)]),
    /// Answers 200 after this long.
    Slow(Duration),
    /// Fails the attempt with this I/O error, as a client error.
    Error(io::ErrorKind),
}

/// What it saw of one request.
#[derive(Clone, Debug)]
struct SeenRequest {
    method: Method,
    at: Instant,
    timeout_header: Option<String>,
    /// The `AttemptMark` in the extensions the attempt was sent with.
    mark: Option<u32>,
}

/// A server inside the middleware chain: the last middleware, answering from a script (then
/// 200) without a network, so that paused time governs everything.
#[derive(Clone, Default)]
struct MemoryServer {
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

/// Left in the extensions by each attempt, to see which attempt's extensions come back.
#[derive(Clone, Copy, Debug, PartialEq)]
struct AttemptMark(u32);

impl MemoryServer {
    fn new(script: Vec<Reply>) -> Self {
        Self {
            script: Arc::new(Mutex::new(script.into())),
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    fn client(&self, staunch: Staunch<HttpClassifier>) -> ClientWithMiddleware {
        ClientBuilder::new(reqwest::Client::new())
            .with(staunch)
            .with(self.clone())
            .build()
    }
}

#[async_trait::async_trait]
impl Middleware for MemoryServer {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let attempt = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(SeenRequest {
                method: request.method().clone(),
                at: Instant::now(),
                timeout_header: request
                    .headers()
                    .get("grpc-timeout")
                    .map(|v| v.to_str().unwrap().to_owned()),
                mark: extensions.get::<AttemptMark>().map(|m| m.0),
            });
            seen.len() as u32
        };
        extensions.insert(AttemptMark(attempt));
        let reply = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Reply::Status(200, &[]));
        let (status, headers) = match reply {
            Reply::Status(status, headers) => (status, headers),
            Reply::Slow(delay) => {
                tokio::time::sleep(delay).await;
                (200, &[][..])
            }
            Reply::Error(kind) => {
                return Err(reqwest_middleware::Error::middleware(io::Error::from(kind)));
            }
        };
        let mut response = http::Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        Ok(response.body("memory").unwrap().into())
    }
}

fn exact_retry(max_attempts: u32) -> Retry<HttpClassifier> {
    Retry::new(
        RetryConfig::new()
            .with_max_attempts(max_attempts)
            .with_backoff(Backoff::constant(ms(10)).with_jitter(Jitter::None))
            .with_max_retry_after(Duration::from_secs(60)),
    )
    .unwrap()
    .classify(HttpClassifier::new())
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_the_least_wait_before_the_next_attempt() {
    let server = MemoryServer::new(vec![
        Reply::Status(503, &[("retry-after", "2")]),
        Reply::Status(429, &[("retry-after", "1")]),
    ]);
    let client = server.client(Staunch::new(Pipeline::new().retry(exact_retry(4))));
    let response = client.get("http://memory/items").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let at: Vec<Instant> = server.seen().iter().map(|s| s.at).collect();
    assert_eq!(at.len(), 3);
    // The backoff alone would have waited 10 ms.
    assert_eq!(at[1] - at[0], Duration::from_secs(2));
    assert_eq!(at[2] - at[1], Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn each_attempt_carries_the_time_it_has_left() {
    let server = MemoryServer::new(vec![
        Reply::Status(503, &[("retry-after", "2")]),
        Reply::Status(503, &[("retry-after", "3")]),
    ]);
    let client = server.client(Staunch::new(Pipeline::new().retry(exact_retry(4))));
    let response = Deadline::after(Duration::from_secs(10))
        .scope(client.get("http://memory/").send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let left: Vec<Duration> = server
        .seen()
        .iter()
        .map(|s| seconds(s.timeout_header.as_deref()))
        .collect();
    assert_eq!(
        left,
        [10, 8, 5].map(Duration::from_secs),
        "what is left, not the original deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_would_pass_the_deadline_is_not_started() {
    let server = MemoryServer::new(vec![Reply::Error(io::ErrorKind::ConnectionReset)]);
    let client =
        server.client(Staunch::new(
            Pipeline::new().retry(
                Retry::new(RetryConfig::new().with_max_attempts(4).with_backoff(
                    Backoff::constant(Duration::from_secs(5)).with_jitter(Jitter::None),
                ))
                .unwrap()
                .classify(HttpClassifier::new()),
            ),
        ));
    let start = Instant::now();
    let err = client
        .get("http://memory/")
        .with_extension(Deadline::after(Duration::from_secs(3)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(stop(&err), (StopReason::Deadline, 1, None));
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no sleep past the deadline"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_times_out_is_retried_for_a_get_but_not_for_a_post() {
    let pipeline = Pipeline::new()
        .retry(exact_retry(3))
        .attempt_timeout(AttemptTimeout::fixed(ms(100)))
        .unwrap();

    let server = MemoryServer::new(vec![Reply::Slow(Duration::from_secs(1))]);
    let client = server.client(Staunch::new(pipeline.clone()));
    let response = client.get("http://memory/").send().await.unwrap();
    assert_eq!((response.status().as_u16(), server.seen().len()), (200, 2));

    // The POST may have reached the server before the timeout: it is not sent again.
    let server = MemoryServer::new(vec![Reply::Slow(Duration::from_secs(1))]);
    let client = server.client(Staunch::new(pipeline));
    let err = client
        .post("http://memory/")
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        stop(&err),
        (StopReason::Timeout, 1, Some(NotRetried::MaybeSent))
    );
    assert!(
        last_failure(stopped(&err))
            .downcast_ref::<Elapsed>()
            .is_some()
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_even_for_a_post_and_a_reset_is_not() {
    let server = MemoryServer::new(vec![
        Reply::Error(io::ErrorKind::ConnectionRefused),
        Reply::Status(201, &[]),
        Reply::Error(io::ErrorKind::ConnectionReset),
    ]);
    let client = server.client(Staunch::new(Pipeline::new().retry(exact_retry(3))));
    let response = client
        .post("http://memory/")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let err = client
        .post("http://memory/")
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert_eq!(stopped(&err).attempts(), 1);
    assert_eq!(not_retried(&err), Some(NotRetried::MaybeSent));
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn replay_never_is_sent_once_and_the_error_says_so() {
    let server = MemoryServer::new(vec![Reply::Error(io::ErrorKind::ConnectionRefused)]);
    let client = server.client(Staunch::new(Pipeline::new().retry(exact_retry(3))));
    let err = client
        .get("http://memory/")
        .with_extension(Replay::Never)
        .send()
        .await
        .unwrap_err();
    assert_eq!(not_retried(&err), Some(NotRetried::ReplayNever));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_stops_the_retries() {
    // Two tokens: the first failure leaves one, not above half, so no retry is allowed.
    let budget = RetryBudget::new(BudgetConfig::token_bucket(2, 0.1)).unwrap();
    let server = MemoryServer::new(vec![Reply::Error(io::ErrorKind::ConnectionReset)]);
    let client = server.client(Staunch::new(
        Pipeline::new().retry(exact_retry(4).with_budget(budget)),
    ));
    let err = client.get("http://memory/").send().await.unwrap_err();
    assert_eq!(
        stop(&err),
        (StopReason::Budget, 1, None),
        "the request was not the reason"
    );
}

#[tokio::test(start_paused = true)]
async fn each_attempt_starts_from_the_callers_extensions_and_the_last_ones_come_back() {
    /// Before staunch: reads what comes back.
    #[derive(Clone, Default)]
    struct Outer(Arc<Mutex<Option<AttemptMark>>>);

    #[async_trait::async_trait]
    impl Middleware for Outer {
        async fn handle(
            &self,
            request: reqwest::Request,
            extensions: &mut Extensions,
            next: Next<'_>,
        ) -> reqwest_middleware::Result<reqwest::Response> {
            let result = next.run(request, extensions).await;
            *self.0.lock().unwrap() = extensions.get::<AttemptMark>().copied();
            result
        }
    }

    let server = MemoryServer::new(vec![Reply::Status(503, &[]), Reply::Status(503, &[])]);
    let outer = Outer::default();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(outer.clone())
        .with(Staunch::new(Pipeline::new().retry(exact_retry(3))))
        .with(server.clone())
        .build();
    client.get("http://memory/").send().await.unwrap();
    let seen = server.seen();
    assert!(seen.iter().all(|s| s.method == Method::GET));
    let marks: Vec<Option<u32>> = seen.iter().map(|s| s.mark).collect();
    assert_eq!(marks, [None, None, None], "no attempt sees another's");
    assert_eq!(*outer.0.lock().unwrap(), Some(AttemptMark(3)));
}
