//! A caller's gRPC deadline across two tonic services on loopback: the caller sends the time it
//! has left in `grpc-timeout` (staunch's `PropagateDeadlineLayer` around a tonic `Channel`);
//! the frontend's `ReceiveDeadlineLayer` runs its handler under that deadline, and the handler's
//! own call to the pricing backend goes through a staunch `Pipeline` inside it, sending on what
//! is left; when the deadline is gone the frontend answers `DEADLINE_EXCEEDED`.
//!
//! - `sku 7`: the backend answers in 20 ms; every hop prints the deadline it sees.
//! - `sku slow`: the backend would take 2 s; the caller gives 300 ms. The frontend stops waiting
//!   for the backend at 80% of the time left (so that it can still answer before its caller's
//!   own timer fires) and answers `DEADLINE_EXCEEDED`; the backend stops its work too.
//!
//! A request that arrives with no time left at all is refused before it is decoded, by the
//! `refuse_expired` interceptor (see `pricing.rs`, the hand-written service this example and
//! staunch's gRPC test share; with `tonic-build`, use a generated server's `with_interceptor`).
//!
//! Run with `cargo run -p staunch --example tonic_deadline --features http,tower`.

// An example talks to its reader on stdout.
#![allow(clippy::print_stdout)]

mod pricing;

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use pricing::{PricingServer, QuoteReply, QuoteRequest, quote, refuse_expired, seen_deadline};
use staunch::classify::Class;
use staunch::deadline::AttemptTimeout;
use staunch::http::{PropagateDeadlineLayer, ReceiveDeadlineLayer};
use staunch::retry::BoxError;
use staunch::{Deadline, Failure, Pipeline, StopReason};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};
use tower::Layer;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let backend = serve(PricingServer::new(backend_quote)).await?;
    let frontend_handler = frontend(connect(backend).await?)?;
    let frontend = serve(PricingServer::new(frontend_handler)).await?;
    let caller = PropagateDeadlineLayer::new().layer(connect(frontend).await?);

    for (sku, timeout) in [
        ("7", Duration::from_secs(2)),
        ("slow", Duration::from_millis(300)),
    ] {
        let started = Instant::now();
        let request = Request::new(QuoteRequest { sku: sku.into() });
        let answer = Deadline::after(timeout)
            .scope(quote(caller.clone(), request))
            .await;
        match answer {
            Ok(reply) => println!(
                "caller: sku {sku} costs {} cents ({:?})",
                reply.get_ref().cents,
                started.elapsed()
            ),
            Err(status) => println!(
                "caller: sku {sku}: {:?} \"{}\" ({:?})",
                status.code(),
                status.message(),
                started.elapsed()
            ),
        }
    }
    Ok(())
}

/// The backend's handler: some work that stops when the caller's deadline does.
async fn backend_quote(request: Request<QuoteRequest>) -> Result<Response<QuoteReply>, Status> {
    let (grpc_timeout, deadline_left_micros) = seen_deadline(&request);
    println!(
        "  backend: grpc-timeout {grpc_timeout:?}, deadline in scope {deadline_left_micros:?} µs"
    );
    let work = if request.get_ref().sku == "slow" {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(20)
    };
    let time = Deadline::current().map_or(work, |deadline| deadline.remaining());
    if tokio::time::timeout(time, tokio::time::sleep(work))
        .await
        .is_err()
    {
        println!("  backend: deadline passed, work abandoned");
        return Err(Status::deadline_exceeded("pricing took too long"));
    }
    Ok(Response::new(QuoteReply {
        cents: 1250,
        grpc_timeout,
        deadline_left_micros,
    }))
}

type Quote = Result<Response<QuoteReply>, Status>;
type QuoteFuture = Pin<Box<dyn Future<Output = Quote> + Send>>;

/// The frontend's handler: the backend call, through a pipeline, inside the caller's deadline.
fn frontend(
    backend: Channel,
) -> Result<impl Fn(Request<QuoteRequest>) -> QuoteFuture + Clone, BoxError> {
    let backend = PropagateDeadlineLayer::new().layer(backend);
    // One attempt with 80% of the time left: the rest is for answering.
    let pipeline = Pipeline::new()
        .classify(|result: &Quote| match result {
            Ok(_) => Class::Success,
            Err(status) if status.code() == Code::Unavailable => Class::Transient,
            Err(_) => Class::Permanent,
        })
        .attempt_timeout(AttemptTimeout::fraction(0.8))?;
    Ok(move |request: Request<QuoteRequest>| {
        let (backend, pipeline) = (backend.clone(), pipeline.clone());
        let (grpc_timeout, left) = seen_deadline(&request);
        println!("  frontend: grpc-timeout {grpc_timeout:?}, deadline in scope {left:?} µs");
        let sku = request.into_inner().sku;
        Box::pin(async move {
            let outcome = pipeline
                .call(|| {
                    quote(
                        backend.clone(),
                        Request::new(QuoteRequest { sku: sku.clone() }),
                    )
                })
                .await;
            match outcome {
                Ok(reply) => Ok(reply),
                Err(err) if out_of_time(&err) => Err(Status::deadline_exceeded(
                    "pricing did not answer within the caller's deadline",
                )),
                Err(err) => Err(err
                    .into_inner()
                    .unwrap_or_else(|| Status::unavailable("pricing refused"))),
            }
        }) as QuoteFuture
    })
}

/// Whether the backend call failed for want of time: staunch stopped it (the attempt's limit or
/// the deadline), or the backend or tonic's channel did, which time the call from the same
/// `grpc-timeout` and may get there first (tonic's channel reports its own timer as
/// `CANCELLED`).
fn out_of_time(err: &staunch::Error<Status>) -> bool {
    let downstream = err.last_failure().and_then(Failure::inner);
    matches!(err.reason(), StopReason::Deadline | StopReason::Timeout)
        || downstream.is_some_and(|s| matches!(s.code(), Code::DeadlineExceeded | Code::Cancelled))
}

/// Serves `service` on loopback under the caller's deadline (at most 10 s), refusing requests
/// that arrive with none left.
async fn serve<H, F>(service: PricingServer<H>) -> Result<SocketAddr, BoxError>
where
    H: Fn(Request<QuoteRequest>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Quote> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        Server::builder()
            .layer(ReceiveDeadlineLayer::new().with_max_timeout(Duration::from_secs(10)))
            .add_service(InterceptedService::new(service, refuse_expired))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    Ok(addr)
}

async fn connect(addr: SocketAddr) -> Result<Channel, BoxError> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}
