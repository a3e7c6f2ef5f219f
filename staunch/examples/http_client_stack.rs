//! A hyper-util client as a tower stack: the staunch pipeline (retry with HTTP classification
//! and the idempotency gate, a circuit breaker, a timeout per attempt) and the caller's deadline
//! sent along in `grpc-timeout`; against a loopback hyper server that reads that deadline back
//! and is busy for every other request.
//!
//! Run with `cargo run -p staunch --example http_client_stack --features http,tower`.

// An example talks to its reader on stdout.
#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use staunch::backoff::Backoff;
use staunch::breaker::{BreakerConfig, CircuitBreaker};
use staunch::deadline::AttemptTimeout;
use staunch::http::{
    HttpClassifier, IdempotencyGate, PropagateDeadlineLayer, ReceiveDeadlineLayer,
};
use staunch::retry::BoxError;
use staunch::{Deadline, Pipeline, Retry, RetryConfig};
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let addr = serve().await?;

    // The client stack, outermost first: the pipeline (the gate keeps POSTs that reached the
    // server from being sent twice), then the deadline header, fresh for every attempt.
    let retry = Retry::new(
        RetryConfig::new()
            .with_max_attempts(3)
            .with_backoff(Backoff::exponential(Duration::from_millis(20))),
    )?
    .classify(HttpClassifier::new());
    let pipeline = Pipeline::new()
        .retry(retry)
        .breaker(CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?)
        .attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(500)))?;
    let mut client = ServiceBuilder::new()
        .layer(pipeline.layer().with_retry_request(IdempotencyGate::new()))
        .layer(PropagateDeadlineLayer::new())
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());

    for method in [Method::GET, Method::POST] {
        let request = Request::builder()
            .method(method.clone())
            .uri(format!("http://{addr}/stock"))
            .body(Full::new(Bytes::from_static(b"{}")))?;
        // The deadline scope must be active when `call` runs: call inside the async block.
        let response = Deadline::after(Duration::from_secs(2))
            .scope(async { client.ready().await?.call(request).await })
            .await?;
        println!("{method}: {}", response.status());
    }
    Ok(())
}

/// A loopback server whose every other request is answered 503 (odd ones), and which runs each
/// handler under the deadline its caller sent, at most 1 s.
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
                    let left = Deadline::current().map(|d| d.remaining());
                    println!(
                        "  server: {} #{n}, grpc-timeout {:?}, deadline in scope {left:?}",
                        request.method(),
                        request.headers().get("grpc-timeout"),
                    );
                    let status = if n.is_multiple_of(2) { 503 } else { 200 };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::new()))
                            .unwrap_or_default(),
                    )
                }
            });
            let service = ServiceBuilder::new()
                .layer(ReceiveDeadlineLayer::new().with_max_timeout(Duration::from_secs(1)))
                .service(handler);
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)),
            );
        }
    });
    Ok(addr)
}
