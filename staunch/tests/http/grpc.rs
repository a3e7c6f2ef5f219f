//! `grpc-timeout` end to end between a tonic client and a tonic server on 127.0.0.1: the
//! client's `PropagateDeadlineLayer` around a tonic `Channel`, the server's
//! `ReceiveDeadlineLayer` in tonic's `Server::layer`. The gRPC service is the hand-written one
//! of the `tonic_deadline` example (no `protoc`).
//!
//! Real sockets need the real clock: deadlines here are seconds long and never reached, and
//! nothing asserts a wall duration.
//!
//! A tonic `Channel` ends a call whose `grpc-timeout` has run out by itself (its own timer,
//! answering `CANCELLED` locally), so the server's answer to a request that arrives with no time
//! left is observed through tonic's client over a plain HTTP/2 connection, which has no such
//! timer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use staunch::Deadline;
use staunch::http::{PropagateDeadlineLayer, ReceiveDeadlineLayer, decode_timeout};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};
use tower::Layer;

#[path = "../../examples/tonic_deadline/pricing.rs"]
mod pricing;

use pricing::{PricingServer, QuoteReply, QuoteRequest, quote, refuse_expired, seen_deadline};

/// A tonic server on an ephemeral port whose handler reports the deadline it sees; stopped on
/// drop.
struct GrpcServer {
    addr: SocketAddr,
    channel: Channel,
    handled: Arc<AtomicU32>,
    _stop: oneshot::Sender<()>,
}

impl GrpcServer {
    async fn start(max_timeout: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let handled = Arc::new(AtomicU32::new(0));
        let handler = {
            let handled = handled.clone();
            move |request: Request<QuoteRequest>| {
                handled.fetch_add(1, Ordering::SeqCst);
                let (grpc_timeout, deadline_left_micros) = seen_deadline(&request);
                async move {
                    Ok::<_, Status>(Response::new(QuoteReply {
                        cents: 1250,
                        grpc_timeout,
                        deadline_left_micros,
                    }))
                }
            }
        };
        let service = InterceptedService::new(PricingServer::new(handler), refuse_expired);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            Server::builder()
                .layer(ReceiveDeadlineLayer::new().with_max_timeout(max_timeout))
                .add_service(service)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    stopped.await.ok();
                }),
        );
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("a valid address")
            .connect()
            .await
            .expect("connected");
        Self {
            addr,
            channel,
            handled,
            _stop: stop,
        }
    }

    /// Calls `Quote` through the client's deadline layer.
    async fn quote(&self) -> Result<QuoteReply, Status> {
        let client = PropagateDeadlineLayer::new().layer(self.channel.clone());
        let request = Request::new(QuoteRequest { sku: "7".into() });
        let reply = tokio::time::timeout(Duration::from_secs(30), quote(client, request))
            .await
            .expect("the call finished");
        reply.map(Response::into_inner)
    }

    /// Calls `Quote` over HTTP/2 without tonic's transport, with the given `grpc-timeout`.
    async fn quote_raw(&self, grpc_timeout: &'static str) -> Result<QuoteReply, Status> {
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http::<tonic::body::Body>();
        let origin = AddOrigin(client, self.addr);
        let mut request = Request::new(QuoteRequest { sku: "7".into() });
        request
            .metadata_mut()
            .insert("grpc-timeout", grpc_timeout.parse().expect("ascii"));
        let reply = tokio::time::timeout(Duration::from_secs(30), quote(origin, request))
            .await
            .expect("the call finished");
        reply.map(Response::into_inner)
    }

    fn handled(&self) -> u32 {
        self.handled.load(Ordering::SeqCst)
    }
}

/// A hyper client as a gRPC transport: requests carry only a path, so add the server's origin.
#[derive(Clone)]
struct AddOrigin(Client<HttpConnector, tonic::body::Body>, SocketAddr);

impl tower::Service<http::Request<tonic::body::Body>> for AddOrigin {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = format!("http://{}{path}", self.1)
            .parse()
            .expect("a valid uri");
        self.0.call(request)
    }
}

fn micros(reply: &QuoteReply) -> Duration {
    Duration::from_micros(reply.deadline_left_micros.expect("a deadline in scope"))
}

#[tokio::test]
async fn the_clients_remaining_deadline_arrives_and_is_the_handlers_deadline() {
    let server = GrpcServer::start(Duration::from_secs(30)).await;
    let deadline = Deadline::after(Duration::from_secs(5));
    let reply = deadline.scope(server.quote()).await.expect("a price");
    assert_eq!(reply.cents, 1250);

    let sent = decode_timeout(reply.grpc_timeout.as_bytes()).expect("a valid grpc-timeout");
    assert!(
        sent <= Duration::from_secs(5) && sent > Duration::ZERO,
        "{sent:?}"
    );
    let left = micros(&reply);
    assert!(
        left <= sent && left > Duration::ZERO,
        "{left:?} of {sent:?}"
    );
    assert_eq!(server.handled(), 1);
}

#[tokio::test]
async fn without_a_deadline_none_is_sent_and_none_is_in_scope() {
    let server = GrpcServer::start(Duration::from_secs(30)).await;
    let reply = server.quote().await.expect("a price");
    assert_eq!(
        (reply.grpc_timeout.as_str(), reply.deadline_left_micros),
        ("", None)
    );
}

#[tokio::test]
async fn the_server_clamps_a_greedy_deadline_to_its_maximum() {
    let server = GrpcServer::start(Duration::from_secs(1)).await;
    let reply = Deadline::after(Duration::from_secs(3600))
        .scope(server.quote())
        .await
        .expect("a price");
    let sent = decode_timeout(reply.grpc_timeout.as_bytes()).expect("a valid grpc-timeout");
    assert!(sent > Duration::from_secs(3000), "{sent:?}");
    assert!(micros(&reply) <= Duration::from_secs(1));
}

#[tokio::test]
async fn a_request_whose_deadline_is_gone_is_answered_deadline_exceeded() {
    let server = GrpcServer::start(Duration::from_secs(30)).await;
    // The caller's time ran out before the server could start: `0n` left.
    let status = server.quote_raw("0n").await.expect_err("refused");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(server.handled(), 0, "the handler never ran");

    // The same server and transport answer a caller with time left.
    let reply = server.quote_raw("5S").await.expect("a price");
    assert_eq!((reply.cents, reply.grpc_timeout.as_str()), (1250, "5S"));
    assert!(micros(&reply) <= Duration::from_secs(5));
    assert_eq!(server.handled(), 1);
}
