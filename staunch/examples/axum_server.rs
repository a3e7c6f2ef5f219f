//! An axum service that works within its caller's deadline: `ReceiveDeadlineLayer` on the
//! router puts the deadline the caller sent in `grpc-timeout` in scope for every handler; the
//! checkout handler's call to the pricing service goes through reqwest with the `Staunch`
//! middleware, inside that deadline, which sends on what is left; and when the deadline is gone
//! the handler answers `504 Gateway Timeout` instead of working for a caller that has left.
//!
//! - `sku 7` with 2 s: pricing answers at once; both services print the deadline they see;
//! - `sku slow` with 300 ms: pricing would take 2 s; the checkout's call stops at the deadline,
//!   and the answer is a 504 (pricing stops its work too);
//! - `sku 7` with `0n` left: a 504 at once, and pricing is never called.
//!
//! Run with `cargo run -p staunch --example axum_server --features reqwest`.

// An example talks to its reader on stdout.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use staunch::backoff::Backoff;
use staunch::deadline::AttemptTimeout;
use staunch::http::{HttpClassifier, ReceiveDeadlineLayer, Staunch};
use staunch::retry::{BoxError, Stopped};
use staunch::{Deadline, Pipeline, Retry, RetryConfig, StopReason};
use tokio::net::TcpListener;

#[derive(Clone)]
struct Checkout {
    pricing: ClientWithMiddleware,
    pricing_url: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let pricing = serve(Router::new().route("/price/{sku}", get(price))).await?;

    let retry = Retry::new(
        RetryConfig::new()
            .with_max_attempts(3)
            .with_backoff(Backoff::exponential(Duration::from_millis(20))),
    )?
    .classify(HttpClassifier::new());
    let pipeline = Pipeline::new()
        .retry(retry)
        .attempt_timeout(AttemptTimeout::fixed(Duration::from_secs(1)))?;
    let checkout = Checkout {
        pricing: ClientBuilder::new(reqwest::Client::new())
            .with(Staunch::new(pipeline))
            .build(),
        pricing_url: format!("http://{pricing}"),
    };
    let checkout = serve(
        Router::new()
            .route("/checkout/{sku}", get(checkout_handler))
            .with_state(checkout),
    )
    .await?;

    // The caller: a plain client that states its deadline in the header.
    let caller = reqwest::Client::new();
    for (sku, timeout) in [("7", "2S"), ("slow", "300m"), ("7", "0n")] {
        let started = Instant::now();
        let response = caller
            .get(format!("http://{checkout}/checkout/{sku}"))
            .header("grpc-timeout", timeout)
            .send()
            .await?;
        println!(
            "caller: sku {sku} with {timeout}: {} {:?} ({:?})",
            response.status(),
            response.text().await?,
            started.elapsed()
        );
    }
    Ok(())
}

/// The checkout handler: its call to pricing runs inside the caller's deadline.
async fn checkout_handler(State(app): State<Checkout>, Path(sku): Path<String>) -> Response {
    let left = Deadline::current().map(|d| d.remaining());
    println!("  checkout: deadline in scope {left:?}");
    if out_of_time_now() {
        // Nothing useful can be done in no time: say so at once.
        return (StatusCode::GATEWAY_TIMEOUT, "the deadline had passed").into_response();
    }
    let url = format!("{}/price/{sku}", app.pricing_url);
    let outcome = app.pricing.get(url).send().await;
    let (stopped_for_time, failure) = match outcome {
        Ok(response) if response.status().is_success() => {
            let price = response.text().await.unwrap_or_default();
            return (StatusCode::OK, format!("sku {sku}: {price}")).into_response();
        }
        Ok(response) => (false, format!("pricing answered {}", response.status())),
        Err(err) => (out_of_time(&err), format!("pricing failed: {err}")),
    };
    // Whatever pricing said last, once the deadline is gone the answer is a timeout.
    let status = if stopped_for_time || out_of_time_now() {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    };
    (status, failure).into_response()
}

fn out_of_time_now() -> bool {
    Deadline::current().is_some_and(|d| d.is_expired())
}

/// Whether staunch stopped the call for want of time: the deadline, or the attempt's limit.
fn out_of_time(err: &reqwest_middleware::Error) -> bool {
    let reqwest_middleware::Error::Middleware(err) = err else {
        return false;
    };
    err.downcast_ref::<Stopped>()
        .is_some_and(|s| matches!(s.reason(), StopReason::Deadline | StopReason::Timeout))
}

/// The pricing handler: work that stops when its caller's deadline does.
async fn price(Path(sku): Path<String>, headers: HeaderMap) -> Response {
    println!(
        "  pricing: grpc-timeout {:?}, deadline in scope {:?}",
        headers.get("grpc-timeout"),
        Deadline::current().map(|d| d.remaining())
    );
    let work = if sku == "slow" {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(10)
    };
    let time = Deadline::current().map_or(work, |d| d.remaining());
    match tokio::time::timeout(time, tokio::time::sleep(work)).await {
        Ok(()) => (StatusCode::OK, "1250 cents").into_response(),
        Err(_) => {
            println!("  pricing: deadline passed, work abandoned");
            (StatusCode::GATEWAY_TIMEOUT, "out of time").into_response()
        }
    }
}

/// Serves `router` on loopback, every request under the deadline its caller sent (at most 10 s).
async fn serve(router: Router) -> Result<std::net::SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router =
        router.layer(ReceiveDeadlineLayer::new().with_max_timeout(Duration::from_secs(10)));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}
