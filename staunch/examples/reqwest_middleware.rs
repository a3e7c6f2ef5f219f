//! Every request of a reqwest client through one staunch pipeline, as a reqwest-middleware
//! middleware: retry with the HTTP classifier (Retry-After honoured), a circuit breaker, a
//! timeout per attempt, the idempotency rules, and the caller's deadline sent along in
//! `grpc-timeout` to a loopback hyper server that reads it back.
//!
//! - a GET meets a busy server (`503`, `Retry-After: 1`) and is retried after a second;
//! - a POST meets the same answer and is not sent again: the server may have acted on it;
//! - a streaming upload to a port where nothing listens is sent once, and the error says why.
//!
//! Run with `cargo run -p staunch --example reqwest_middleware --features reqwest`.

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
use hyper_util::service::TowerToHyperService;
use reqwest_middleware::ClientBuilder;
use staunch::backoff::Backoff;
use staunch::breaker::{BreakerConfig, CircuitBreaker};
use staunch::deadline::AttemptTimeout;
use staunch::http::{HttpClassifier, NotRetried, ReceiveDeadlineLayer, Staunch};
use staunch::retry::{BoxError, Stopped};
use staunch::{Deadline, Pipeline, Retry, RetryConfig};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let addr = serve().await?;

    let retry = Retry::new(
        RetryConfig::new()
            .with_max_attempts(3)
            .with_backoff(Backoff::exponential(Duration::from_millis(50)))
            .with_max_retry_after(Duration::from_secs(5)),
    )?
    .classify(HttpClassifier::new());
    let pipeline = Pipeline::new()
        .retry(retry)
        .breaker(CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?)
        .attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(500)))?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(Staunch::new(pipeline))
        .build();

    let started = Instant::now();
    // The whole exchange has 10 s; every attempt tells the server what is left of it.
    Deadline::after(Duration::from_secs(10))
        .scope(async {
            let response = client.get(format!("http://{addr}/stock")).send().await?;
            println!("GET: {} after {:?}", response.status(), started.elapsed());

            let response = client
                .post(format!("http://{addr}/orders"))
                .body("{\"sku\":7}")
                .send()
                .await?;
            println!("POST: {} (sent once)", response.status());
            Ok::<_, BoxError>(())
        })
        .await?;

    // Nothing listens on this port: the connection is refused, which would be retried, but the
    // body was a stream and is gone.
    let closed = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let body = reqwest::Body::wrap(Full::new(Bytes::from_static(b"a large upload")));
    let err = client
        .put(format!("http://{closed}/upload"))
        .body(body)
        .send()
        .await
        .err()
        .ok_or("the upload had nowhere to go")?;
    println!("PUT: {err}");
    if let reqwest_middleware::Error::Middleware(err) = &err {
        let why = err.downcast_ref::<NotRetried>();
        let stopped = err.downcast_ref::<Stopped>();
        println!(
            "  why: {why:?}; attempts: {:?}",
            stopped.map(Stopped::attempts)
        );
    }
    Ok(())
}

/// A loopback server that is busy for each path's first request, and runs every handler under
/// the deadline its caller sent (at most 5 s).
async fn serve() -> Result<std::net::SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let count = Arc::new(AtomicU32::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = count.clone();
            let handler = service_fn(move |request: Request<hyper::body::Incoming>| {
                let n = count.fetch_add(1, Ordering::SeqCst);
                async move {
                    println!(
                        "  server: {} {} #{n}, grpc-timeout {:?}, deadline in scope {:?}",
                        request.method(),
                        request.uri().path(),
                        request.headers().get("grpc-timeout"),
                        Deadline::current().map(|d| d.remaining()),
                    );
                    // Busy for the first GET and for every POST.
                    let busy = n == 0 || request.method() == http::Method::POST;
                    let response = if busy {
                        Response::builder().status(503).header("retry-after", "1")
                    } else {
                        Response::builder().status(200)
                    };
                    Ok::<_, Infallible>(response.body(Full::new(Bytes::new())).unwrap_or_default())
                }
            });
            let service = ServiceBuilder::new()
                .layer(ReceiveDeadlineLayer::new().with_max_timeout(Duration::from_secs(5)))
                .service(handler);
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)),
            );
        }
    });
    Ok(addr)
}
