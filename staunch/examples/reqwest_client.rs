//! A reqwest call wrapped through staunch's closure API: retried with jittered backoff,
//! honouring the server's `Retry-After`, within the caller's deadline.
//!
//! The loopback server answers `503 Service Unavailable` with `Retry-After: 1` twice, then
//! `200 OK`. `HttpClassifier` reads reqwest's response with staunch's HTTP rules: 5xx, 408 and
//! 429 are transient, with the server's hint when it gives one; other 4xx are permanent.
//!
//! This wraps one call site. To put every request of a client through a pipeline (with the
//! idempotency rules and the deadline header), use the middleware instead: see the
//! `reqwest_middleware` example.
//!
//! Run with `cargo run -p staunch --example reqwest_client --features reqwest`.

// An example talks to its reader on stdout.
#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use staunch::backoff::Backoff;
use staunch::http::HttpClassifier;
use staunch::{Deadline, Retry, RetryConfig};
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let url = format!("http://{}/inventory", serve().await?);
    let client = reqwest::Client::new();

    let retry = Retry::new(
        RetryConfig::new()
            .with_max_attempts(4)
            .with_backoff(Backoff::exponential(Duration::from_millis(100)))
            .with_max_retry_after(Duration::from_secs(5)),
    )?
    .classify(HttpClassifier::new());

    let started = Instant::now();
    let response = Deadline::after(Duration::from_secs(10))
        .scope(retry.call(|| {
            println!("  GET {url} at {:?}", started.elapsed());
            client.get(&url).send()
        }))
        .await?;
    println!(
        "{} after {:?}: {}",
        response.status(),
        started.elapsed(),
        response.text().await?
    );
    Ok(())
}

/// A loopback server that is busy for its first two requests.
async fn serve() -> Result<std::net::SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let served = Arc::new(AtomicU32::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let served = served.clone();
            let service = hyper::service::service_fn(move |_: Request<hyper::body::Incoming>| {
                let busy = served.fetch_add(1, Ordering::SeqCst) < 2;
                let response = if busy {
                    Response::builder()
                        .status(503)
                        .header("retry-after", "1")
                        .body(Full::new(Bytes::new()))
                } else {
                    Response::builder()
                        .status(200)
                        .body(Full::new(Bytes::from_static(b"7 in stock")))
                };
                async move { Ok::<_, Infallible>(response.unwrap_or_default()) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok(addr)
}
