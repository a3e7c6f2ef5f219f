//! HTTP: response classification, `Retry-After`, the idempotency gate, and deadline
//! propagation across services (feature `http`; the layers also need `tower`).
//!
//! | piece | what it does |
//! |---|---|
//! | [`HttpClassifier`] | the [`Class`](crate::classify::Class) of a response or client error, for retry, breaker and fallback alike |
//! | [`parse_retry_after`], [`retry_after`] | `Retry-After` as delta-seconds or HTTP-date: bounded, never panics |
//! | [`IdempotencyGate`], [`Replay`] | retry only requests that are safe to send again |
//! | [`PropagateDeadlineLayer`], [`ReceiveDeadlineLayer`] | the caller's deadline in a `grpc-timeout` header, out and back in |
//! | [`encode_timeout`], [`decode_timeout`] | the `grpc-timeout` value codec |
//! | `Staunch`, `NotRetried` | a reqwest-middleware middleware running each request through a [`Pipeline`](crate::Pipeline) (feature `reqwest`) |
//!
//! # Three doors
//!
//! | where | what to use | example |
//! |---|---|---|
//! | a reqwest client | `Staunch`, a reqwest-middleware middleware: `ClientBuilder::new(client).with(Staunch::new(pipeline))` (feature `reqwest`) | `examples/reqwest_middleware.rs` |
//! | a hyper-util client, a tonic `Channel`, any tower `Service<http::Request<B>>` | a [`PipelineLayer`](crate::pipeline::PipelineLayer) with the [`IdempotencyGate`], over a [`PropagateDeadlineLayer`] (feature `tower`; below) | `examples/http_client_stack.rs` |
//! | an axum, tonic or hyper server | a [`ReceiveDeadlineLayer`] (axum's `Router::layer`, tonic's `Server::layer`); handlers call out inside the deadline it puts in scope | `examples/axum_server.rs`, `examples/tonic_deadline/` |
//!
//! The two client doors run the same pipeline, so a policy behaves the same behind either;
//! both send the deadline on, and the server door takes it in, so that a chain of services
//! stops when its first caller does.
//!
//! ## When the caller's deadline is gone
//!
//! [`ReceiveDeadlineLayer`] runs the handler whatever the deadline; the handler decides what to
//! answer. Calls made in the handler through a pipeline (or the `Staunch` middleware) stop with
//! [`StopReason::Deadline`](crate::StopReason::Deadline), or
//! [`StopReason::Timeout`](crate::StopReason::Timeout) for an attempt cut short by the
//! deadline, without waiting; the handler then answers as a gateway would:
//!
//! - HTTP: `504 Gateway Timeout` (the examples answer a request that arrives with no time left
//!   at once, without calling anything);
//! - gRPC: `DEADLINE_EXCEEDED`. tonic times calls from the same `grpc-timeout` on its own:
//!   its server answers `CANCELLED` when its timer fires first, and its `Channel` ends a call
//!   locally (also `CANCELLED`) when the client's time runs out. So refuse a request that
//!   arrives with no time left in an interceptor, which answers before the message is decoded
//!   and so before tonic's timer; and stop a handler's own calls a little before the deadline
//!   (an [`AttemptTimeout::fraction`](crate::deadline::AttemptTimeout::fraction) of what is
//!   left) so that it can still answer.
//!
//! # A client stack
//!
//! ```
//! use std::time::Duration;
//! use staunch::backoff::Backoff;
//! use staunch::http::{HttpClassifier, IdempotencyGate, PropagateDeadlineLayer};
//! use staunch::retry::RetryLayer;
//! use staunch::{Deadline, Retry, RetryConfig};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // Any `Service<http::Request<B>>`: hyper-util's legacy `Client`, a tonic channel, ...
//! # let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
//! let client = service_fn(move |request: http::Request<String>| {
//! #   let calls = calls.clone();
//!     async move {
//!         # let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!         # assert!(request.headers().contains_key("grpc-timeout"));
//!         // The first attempt meets a busy server.
//!         let status = if n == 0 { 503 } else { 200 };
//!         Ok::<_, std::io::Error>(http::Response::builder().status(status).body(()).unwrap())
//!     }
//! });
//!
//! let retry = Retry::new(
//!     RetryConfig::new()
//!         .with_max_attempts(3)
//!         .with_backoff(Backoff::exponential(Duration::from_millis(50))),
//! )?
//! .classify(HttpClassifier::new());
//! let mut client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(retry).with_retry_request(IdempotencyGate::new()))
//!     .layer(PropagateDeadlineLayer::new())
//!     .service(client);
//!
//! let request = http::Request::get("http://inventory/items/7").body(String::new())?;
//! // `call` sends the first attempt at once: make it inside the scope, not as its argument.
//! let response = Deadline::after(Duration::from_secs(2))
//!     .scope(async { client.ready().await?.call(request).await })
//!     .await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! # Why POST is not retried
//!
//! A retry sends the request again. For GET, HEAD, OPTIONS, TRACE, PUT and DELETE that is
//! harmless: RFC 9110 defines them as idempotent, so two deliveries have the effect of one. A
//! POST that timed out or got a 503 may already have been acted on (the order placed, the card
//! charged) before the answer was lost; sending it again may do it twice. So by default a
//! non-idempotent request is retried only when the failure proves it never reached the server:
//! the connection could not be made ([`is_connect_failure`]). A POST that the server
//! deduplicates (an idempotency key) can opt in with the [`Replay::Safe`] request extension; a
//! GET with side effects can opt out with [`Replay::IfNotSent`] or [`Replay::Never`].
//!
//! ## How the gate plugs into the retry layer
//!
//! Whether to retry depends on the request as well as the outcome, and a
//! [`Classify`](crate::classify::Classify) sees only the outcome. The retry layer already keeps
//! a copy of each request for the next attempt, made by its
//! [`MakeRetryRequest`](crate::retry::MakeRetryRequest); that copier is also asked, through
//! [`Reclassify`](crate::retry::Reclassify), to adjust the classifier's verdict for the request.
//! [`IdempotencyGate`] is that copier for `http::Request`s:
//!
//! - it copies the method, URI, headers, extensions, and the body with a [`CopyBody`] strategy
//!   ([`Clone`] by default), and makes no copy of a [`Replay::Never`] request, so that its one
//!   attempt is the last;
//! - after the classifier (usually [`HttpClassifier`]) calls a failure retriable, it turns that
//!   into [`Permanent`](crate::classify::Class::Permanent) when the request's [`Replay`] forbids
//!   sending it again.
//!
//! So the classifier stays the one shared mechanism, unchanged between retry and the breaker,
//! and the gate changes retry only: a breaker still counts a POST's 503 as the failure it is.
//!
//! ## Recognising "never reached the server"
//!
//! There is no portable error type for it. The default, [`SourceChain`], walks the error's
//! `source()` chain for an `io::Error` of kind `ConnectionRefused` or hyper-util's legacy client
//! error of kind `Connect` (which reqwest wraps), without depending on either crate. Other
//! clients set a predicate with [`IdempotencyGate::with_connect_failure`]. Resets and timeouts
//! are deliberately not connect failures: they can happen after the server has the request.
//!
//! # Retry-After
//!
//! A 503 or 429 may say when to come back. [`HttpClassifier`] turns a valid `Retry-After` on a
//! transient status into [`Class::RetryAfter`](crate::classify::Class::RetryAfter), and the
//! retry waits at least that long, or stops with
//! [`StopReason::RetryAfterTooLong`](crate::StopReason::RetryAfterTooLong) if the hint exceeds
//! [`RetryConfig::with_max_retry_after`](crate::RetryConfig::with_max_retry_after). The parser
//! is the trust boundary: server input is never a panic, and never more than
//! [`MAX_RETRY_AFTER`].
//!
//! # Deadlines across services
//!
//! A deadline in scope ([`Deadline::scope`](crate::Deadline::scope)) stops local work in time,
//! but the service called over HTTP does not know it. [`PropagateDeadlineLayer`] sends the time
//! left in a `grpc-timeout` header (the format gRPC uses, so gRPC servers understand it), and
//! [`ReceiveDeadlineLayer`] on the server runs the handler under that deadline, so its own
//! retries and calls stop when the original caller has given up, instead of doing work whose
//! answer nobody will read. The server clamps the deadline to its own maximum: the header is
//! client input, and a client must not be able to hold a server's resources for hours.
//!
//! Only the remaining duration crosses the wire, never an instant: the two machines' clocks
//! need not agree. The network transit time is not subtracted, so the server's deadline ends a
//! little after the client's, which is harmless: the client has stopped waiting by then.

mod classify;
#[cfg(feature = "tower")]
mod deadline_header;
#[cfg(feature = "tower")]
pub mod future;
mod grpc_timeout;
mod idempotency;
#[cfg(feature = "reqwest")]
mod reqwest;
mod retry_after;

pub use classify::HttpClassifier;
#[cfg(feature = "tower")]
pub use deadline_header::{
    GRPC_TIMEOUT, PropagateDeadline, PropagateDeadlineLayer, ReceiveDeadline, ReceiveDeadlineLayer,
};
pub use grpc_timeout::{MAX_TIMEOUT, TimeoutValue, decode_timeout, encode_timeout};
#[cfg(feature = "tower")]
pub use idempotency::{CloneBody, CopyBody, IdempotencyGate};
pub use idempotency::{ConnectFailure, Replay, SourceChain, is_connect_failure};
#[cfg(feature = "reqwest")]
pub use reqwest::{NotRetried, Staunch};
pub use retry_after::{MAX_RETRY_AFTER, parse_retry_after, retry_after};
