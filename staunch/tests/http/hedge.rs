//! Hedging over real loopback HTTP: a hyper server whose every 50th response is slow, behind a
//! hyper-util client wrapped in `HedgeLayer` with the `IdempotencyGate`.
//!
//! Real sockets need the real clock, so nothing here asserts a duration: the server tags each
//! fast response with its request number, and the tests check which responses the client got
//! (never a slow one), how many requests the server saw (about 2% more), and their methods
//! (never a second POST).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::Method;
use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay, HedgeEventKind, HedgeLayer};
use staunch::http::{HttpClassifier, IdempotencyGate};
use tower::{Layer, Service, ServiceExt};

use crate::support::{Fault, Server, hyper_client, request};

/// Every `SLOW_EVERY`th request the server sees answers after `SLOW`.
const SLOW_EVERY: usize = 50;
const SLOW: Duration = Duration::from_millis(500);
/// Well above a loopback round trip, well below `SLOW`.
const DELAY: Duration = Duration::from_millis(100);
const CALLS: usize = 200;

/// Fails the test instead of hanging it; never part of what a test checks.
async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("the exchange finished")
}

/// The script of a server whose every 50th response is slow; the fast ones say which request
/// they answer (`x-request`), the slow ones do not.
async fn server() -> Server {
    let script = (1..=CALLS * 2)
        .map(|n| {
            if n % SLOW_EVERY == 0 {
                Fault::Delay(SLOW, 200)
            } else {
                Fault::Status(200, vec![("x-request", n.to_string())])
            }
        })
        .collect();
    Server::start(script, Duration::from_secs(30)).await
}

/// The client: hedging after `DELAY`, for requests the gate says are safe to send twice.
fn client(
    sent: &Arc<AtomicU32>,
) -> impl Service<
    http::Request<http_body_util::Full<bytes::Bytes>>,
    Response = http::Response<hyper::body::Incoming>,
    Error = staunch::retry::BoxError,
> {
    let hedge = Hedge::new(HedgeConfig::new(HedgeDelay::fixed(DELAY)).with_max_attempts(2))
        .expect("valid config")
        .classify(HttpClassifier::new())
        .on_hedge({
            let sent = sent.clone();
            move |event| {
                if let HedgeEventKind::Sent { .. } = event.kind {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    HedgeLayer::new(hedge)
        .with_hedge_request(IdempotencyGate::new())
        .layer(hyper_client())
}

#[tokio::test]
async fn hedged_gets_never_wait_for_a_slow_response_and_cost_about_two_percent_more_requests() {
    let server = server().await;
    let sent = Arc::new(AtomicU32::new(0));
    let mut client = client(&sent);
    let mut answered_by = Vec::new();
    for _ in 0..CALLS {
        let response = bounded(async {
            client
                .ready()
                .await?
                .call(request(Method::GET, &server.uri("/item")))
                .await
        })
        .await
        .expect("a response");
        assert_eq!(response.status(), 200);
        let tag = response
            .headers()
            .get("x-request")
            .map(|v| v.to_str().unwrap().to_owned());
        answered_by.push(tag);
    }
    // No slow response reached the client: each call was answered by a fast one.
    let slow = answered_by.iter().filter(|tag| tag.is_none()).count();
    assert_eq!(
        slow, 0,
        "slow responses reached the client: {answered_by:?}"
    );
    let requests = server.requests();
    let extra = requests - CALLS;
    // Every slow first attempt (the server's 50th, 100th, ... request) was hedged, and little
    // else: a loopback answer slower than 100 ms on a busy machine may add one or two.
    let slow_seen = requests / SLOW_EVERY;
    assert!(
        slow_seen <= extra && extra <= slow_seen + 6,
        "{requests} requests for {CALLS} calls ({slow_seen} slow)"
    );
    assert_eq!(sent.load(Ordering::Relaxed) as usize, extra);
    let share = extra as f64 / CALLS as f64;
    assert!((0.015..=0.05).contains(&share), "{share}");
}

#[tokio::test]
async fn a_post_is_never_sent_twice_even_when_slow() {
    let server = server().await;
    let sent = Arc::new(AtomicU32::new(0));
    let mut client = client(&sent);
    let calls = 60; // the 50th is slow
    let mut slow_answers = 0;
    for _ in 0..calls {
        let response = bounded(async {
            client
                .ready()
                .await?
                .call(request(Method::POST, &server.uri("/orders")))
                .await
        })
        .await
        .expect("a response");
        assert_eq!(response.status(), 200);
        slow_answers += usize::from(!response.headers().contains_key("x-request"));
    }
    assert_eq!(slow_answers, 1, "the slow POST was waited for, not hedged");
    assert_eq!(server.requests(), calls, "one request per POST");
    assert!(server.seen().iter().all(|seen| seen.method == Method::POST));
    assert_eq!(sent.load(Ordering::Relaxed), 0);
}
