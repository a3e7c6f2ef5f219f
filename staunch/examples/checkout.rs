//! The canonical request of staunch's design: a checkout with a 5 s deadline calls a pricing
//! service capped at 500 ms (with a fallback price) and an inventory service capped at 200 ms
//! (whose failure fails the checkout). Both services are real HTTP servers on loopback.
//!
//! Pricing answers its first two requests in 600 ms: those time out at 500 ms and the checkout
//! uses the fallback price, well within its deadline. Without the per-call timeout, a slow
//! pricing service would hold every checkout for as long as it takes.
//!
//! Run with `cargo run -p staunch --example checkout --features http`.

// An example talks to its reader on stdout.
#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use staunch::breaker::{BreakerConfig, CircuitBreaker};
use staunch::classify::{Class, Classify};
use staunch::deadline::AttemptTimeout;
use staunch::{Deadline, Error, Pipeline, Retry, RetryConfig};
use tokio::net::TcpListener;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The price the checkout falls back to when pricing fails: the last one known, say.
const FALLBACK_PRICE_CENTS: u64 = 999;

/// A quote: what the checkout answers.
struct Quote {
    price_cents: u64,
    in_stock: u64,
}

/// GETs `url` and reads the body as a number; HTTP errors are classified by status.
async fn get_number(client: &HttpClient, url: &str) -> Result<u64, BoxError> {
    let response = client.get(url.parse()?).await?;
    let status = response.status();
    if status != StatusCode::OK {
        return Err(format!("{url}: {status}").into());
    }
    let body = response.into_body().collect().await?.to_bytes();
    Ok(std::str::from_utf8(&body)?.trim().parse()?)
}

/// The checkout handler: every dependency call goes through its own pipeline, inside the
/// request's deadline.
async fn checkout(
    client: &HttpClient,
    pricing: &Pipeline<
        impl Classify<u64, BoxError>,
        impl staunch::pipeline::Recover<u64, BoxError>,
    >,
    inventory: &Pipeline<impl Classify<u64, BoxError>>,
    urls: &(String, String),
) -> Result<Quote, Error<BoxError>> {
    Deadline::after(Duration::from_secs(5))
        .scope(async {
            let price_cents = pricing.call(|| get_number(client, &urls.0)).await?;
            let in_stock = inventory.call(|| get_number(client, &urls.1)).await?;
            Ok(Quote {
                price_cents,
                in_stock,
            })
        })
        .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let slow_pricing = Arc::new(AtomicU32::new(2));
    let pricing_addr = serve({
        let slow = slow_pricing.clone();
        move || {
            let slow = slow
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            (
                if slow {
                    Duration::from_millis(600)
                } else {
                    Duration::from_millis(20)
                },
                "1250",
            )
        }
    })
    .await?;
    let inventory_addr = serve(|| (Duration::from_millis(5), "7")).await?;
    let urls = (
        format!("http://{pricing_addr}/price"),
        format!("http://{inventory_addr}/stock"),
    );
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    // Errors of these calls are transient (the status was already checked in `get_number`).
    let classify = |r: &Result<u64, BoxError>| {
        if r.is_ok() {
            Class::Success
        } else {
            Class::Transient
        }
    };
    let pricing = Pipeline::new()
        .classify(classify)
        .breaker(CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?)
        .attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(500)))?
        .fallback(|err| {
            println!(
                "  pricing failed ({}): using the fallback price",
                err.reason()
            );
            async { FALLBACK_PRICE_CENTS }
        });
    let inventory = Pipeline::new()
        .retry(Retry::new(RetryConfig::new().with_max_attempts(2))?.classify(classify))
        .attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(200)))?;

    for n in 1..=4 {
        let started = Instant::now();
        match checkout(&client, &pricing, &inventory, &urls).await {
            Ok(Quote {
                price_cents,
                in_stock,
            }) => println!(
                "checkout #{n}: {price_cents} cents, {in_stock} in stock, in {:?}",
                started.elapsed()
            ),
            Err(err) => println!("checkout #{n} failed in {:?}: {err}", started.elapsed()),
        }
    }
    Ok(())
}

/// A loopback HTTP server answering every request after `behaviour()`'s delay with its body.
async fn serve(
    behaviour: impl Fn() -> (Duration, &'static str) + Send + Sync + 'static,
) -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let behaviour = Arc::new(behaviour);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let behaviour = behaviour.clone();
            let service = hyper::service::service_fn(move |_: Request<hyper::body::Incoming>| {
                let (delay, body) = behaviour();
                async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                        body.as_bytes(),
                    ))))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok(addr)
}
