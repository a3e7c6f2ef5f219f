//! A unary gRPC service written by hand, as `tonic-build` would generate it, so that the example
//! (and staunch's gRPC end-to-end test, which includes this file) needs no `protoc`: prost
//! messages from `#[derive(prost::Message)]`, a server that routes one method to a handler
//! through `tonic::server::Grpc`, and a client call through `tonic::client::Grpc`.
//!
//! ```proto
//! service Pricing { rpc Quote(QuoteRequest) returns (QuoteReply); }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use staunch::Deadline;
use tonic::body::Body;
use tonic::client::{Grpc, GrpcService};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// The request: which item to price.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct QuoteRequest {
    #[prost(string, tag = "1")]
    pub(crate) sku: String,
}

/// The reply: the price, and what the handler saw of its caller's deadline.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct QuoteReply {
    #[prost(uint64, tag = "1")]
    pub(crate) cents: u64,
    /// The `grpc-timeout` header as it arrived ("" without one).
    #[prost(string, tag = "2")]
    pub(crate) grpc_timeout: String,
    /// `Deadline::current()` in the handler, in microseconds; absent without a deadline.
    #[prost(uint64, optional, tag = "3")]
    pub(crate) deadline_left_micros: Option<u64>,
}

const QUOTE: &str = "/staunch.example.Pricing/Quote";

/// Refuses a request whose deadline (put in scope by staunch's `ReceiveDeadlineLayer`) has
/// already passed, before its message is even decoded: `DEADLINE_EXCEEDED`, the status the
/// caller would give itself. As a tonic interceptor (`InterceptedService::new(server, ..)`, or
/// a generated server's `with_interceptor`), it answers at once, so tonic's own `grpc-timeout`
/// timer cannot answer `CANCELLED` first.
pub(crate) fn refuse_expired(request: Request<()>) -> Result<Request<()>, Status> {
    match Deadline::current() {
        Some(deadline) if deadline.is_expired() => Err(Status::deadline_exceeded(
            "the caller's deadline passed before the request could start",
        )),
        _ => Ok(request),
    }
}

/// What the handler sees of the deadline: the header and the deadline in scope.
pub(crate) fn seen_deadline<T>(request: &Request<T>) -> (String, Option<u64>) {
    let header = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let left = Deadline::current().map(|d| d.remaining().as_micros() as u64);
    (header, left)
}

/// The `Pricing` service around a handler `H`, an async function of the request.
#[derive(Clone)]
pub(crate) struct PricingServer<H> {
    handler: H,
}

impl<H> PricingServer<H> {
    pub(crate) fn new(handler: H) -> Self {
        Self { handler }
    }
}

impl<H> NamedService for PricingServer<H> {
    const NAME: &'static str = "staunch.example.Pricing";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<H, F> tower::Service<http::Request<Body>> for PricingServer<H>
where
    H: Fn(Request<QuoteRequest>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Response<QuoteReply>, Status>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != QUOTE {
            let status = Status::unimplemented(request.uri().path().to_owned());
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let handler = self.handler.clone();
        Box::pin(async move {
            let method = tower::service_fn(handler);
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<QuoteReply, QuoteRequest>::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// Calls `Quote` over `channel` (any gRPC transport: a tonic `Channel`, or one wrapped in
/// staunch's `PropagateDeadlineLayer`).
pub(crate) async fn quote<S>(
    channel: S,
    request: Request<QuoteRequest>,
) -> Result<Response<QuoteReply>, Status>
where
    S: GrpcService<Body>,
    S::ResponseBody: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    <S::ResponseBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut grpc = Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("not ready: {}", e.into())))?;
    let codec = ProstCodec::<QuoteRequest, QuoteReply>::default();
    grpc.unary(request, PathAndQuery::from_static(QUOTE), codec)
        .await
}
