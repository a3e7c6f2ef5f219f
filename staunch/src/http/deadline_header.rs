//! Deadline propagation across services: the client layer writes the remaining deadline into a
//! header, the server layer reads it back into the request's deadline scope.

use std::task::{Context, Poll};
use std::time::Duration;

use ::http::header::HeaderName;
use ::http::{HeaderMap, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::future::ReceiveDeadlineFuture;
use super::grpc_timeout::{decode_timeout, encode_timeout};
use crate::Deadline;

/// The default deadline header, gRPC's: `grpc-timeout`.
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// A client [`Layer`] that sends the caller's remaining time with every request, in a header in
/// the `grpc-timeout` format ([`encode_timeout`]).
///
/// The deadline is the tighter of the one in scope ([`Deadline::current`]) when the request is
/// sent and a [`Deadline`] request extension (an explicit, per-request deadline). With neither,
/// the request is sent unchanged. The value is the time left at the moment of the call, so
/// place the layer inside a retry layer: every attempt then carries what is left for it.
///
/// The scope must be active when `call` runs, which for tower services is before the returned
/// future is first polled: write `deadline.scope(async { svc.call(req).await })`, not
/// `deadline.scope(svc.call(req))`, whose argument is evaluated (and the request sent) outside
/// the scope.
///
/// # Examples
///
/// ```
/// use staunch::http::PropagateDeadlineLayer;
/// use staunch::retry::RetryLayer;
/// use staunch::{Retry, RetryConfig};
/// use tower::ServiceBuilder;
///
/// # let client = tower::service_fn(|_: http::Request<()>| async {
/// #     Ok::<_, std::io::Error>(http::Response::new(()))
/// # });
/// let client = ServiceBuilder::new()
///     .layer(RetryLayer::new(Retry::new(RetryConfig::new())?))
///     .layer(PropagateDeadlineLayer::new()) // inside retry: fresh per attempt
///     .service(client);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct PropagateDeadlineLayer {
    header: HeaderName,
}

impl PropagateDeadlineLayer {
    /// Writes `grpc-timeout`.
    pub const fn new() -> Self {
        Self {
            header: GRPC_TIMEOUT,
        }
    }

    /// Writes the header `name` instead (same value format).
    pub fn with_header_name(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }
}

impl Default for PropagateDeadlineLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for PropagateDeadlineLayer {
    type Service = PropagateDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateDeadline {
            inner,
            header: self.header.clone(),
        }
    }
}

/// The service of [`PropagateDeadlineLayer`].
#[derive(Clone, Debug)]
pub struct PropagateDeadline<S> {
    inner: S,
    header: HeaderName,
}

impl<S> PropagateDeadline<S> {
    /// Wraps `inner`, writing `grpc-timeout`.
    pub const fn new(inner: S) -> Self {
        Self {
            inner,
            header: GRPC_TIMEOUT,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for PropagateDeadline<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        let explicit = request.extensions().get::<Deadline>().copied();
        write_deadline(request.headers_mut(), &self.header, explicit);
        self.inner.call(request)
    }
}

/// Writes the time left before the tighter of `explicit` and the deadline in scope into the
/// header `name`, replacing any value there; with neither, leaves `headers` unchanged.
pub(crate) fn write_deadline(
    headers: &mut HeaderMap,
    name: &HeaderName,
    explicit: Option<Deadline>,
) {
    if let Some(deadline) = Deadline::effective(explicit) {
        let value = encode_timeout(deadline.remaining()).to_header_value();
        headers.insert(name.clone(), value);
    }
}

/// A server [`Layer`] that runs each request under the deadline its caller sent (see
/// [`PropagateDeadlineLayer`]), clamped to a server-side maximum.
///
/// The inner service's future runs in [`Deadline::scope`], so everything the handler does
/// (retries, attempt timeouts, further calls through a [`PropagateDeadlineLayer`]) sees the
/// caller's remaining time and stops when it is gone, instead of working for a caller that
/// has already given up.
///
/// # Why clamp
///
/// The header is input from the network. Trusted as is, a client could pin server resources
/// for hours with `99999999H`. The server decides the longest it will work on one request
/// ([`with_max_timeout`](Self::with_max_timeout), default 30 s): the effective deadline is the
/// shorter of the client's and that. A malformed header is ignored (the request runs with no
/// deadline from the header), with a `tracing` debug event under the `tracing` feature; it
/// never fails the request and never panics. With several headers, the tightest valid one wins.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::Deadline;
/// use staunch::http::ReceiveDeadlineLayer;
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut server = ServiceBuilder::new()
///     .layer(ReceiveDeadlineLayer::new().with_max_timeout(Duration::from_secs(10)))
///     .service(service_fn(|_: http::Request<()>| async {
///         Ok::<_, std::convert::Infallible>(Deadline::current().map(|d| d.remaining()))
///     }));
/// let request = http::Request::get("/").header("grpc-timeout", "5S").body(()).unwrap();
/// let left = server.ready().await.unwrap().call(request).await.unwrap();
/// assert!(left.unwrap() <= Duration::from_secs(5));
///
/// let greedy = http::Request::get("/").header("grpc-timeout", "99999999H").body(()).unwrap();
/// let left = server.ready().await.unwrap().call(greedy).await.unwrap();
/// assert!(left.unwrap() <= Duration::from_secs(10), "clamped by the server");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ReceiveDeadlineLayer {
    header: HeaderName,
    max_timeout: Duration,
}

impl ReceiveDeadlineLayer {
    /// Reads `grpc-timeout`, clamped to 30 s.
    pub const fn new() -> Self {
        Self {
            header: GRPC_TIMEOUT,
            max_timeout: Duration::from_secs(30),
        }
    }

    /// Reads the header `name` instead (same value format).
    pub fn with_header_name(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// Sets the longest deadline a caller can impose. Default: 30 s.
    pub const fn with_max_timeout(mut self, max_timeout: Duration) -> Self {
        self.max_timeout = max_timeout;
        self
    }

    /// The timeout a request with `headers` runs under: the tightest valid header value,
    /// clamped to the maximum; `None` without a valid header. Pure: reads no clock.
    pub fn timeout_of(&self, headers: &HeaderMap) -> Option<Duration> {
        timeout_of(&self.header, self.max_timeout, headers)
    }
}

impl Default for ReceiveDeadlineLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for ReceiveDeadlineLayer {
    type Service = ReceiveDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReceiveDeadline {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`ReceiveDeadlineLayer`].
#[derive(Clone, Debug)]
pub struct ReceiveDeadline<S> {
    inner: S,
    layer: ReceiveDeadlineLayer,
}

impl<S> ReceiveDeadline<S> {
    /// Wraps `inner` with the defaults of [`ReceiveDeadlineLayer::new`].
    pub const fn new(inner: S) -> Self {
        Self {
            inner,
            layer: ReceiveDeadlineLayer::new(),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ReceiveDeadline<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ReceiveDeadlineFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let deadline = self
            .layer
            .timeout_of(request.headers())
            .map(Deadline::after);
        // The handler's own work starts in the call, so the call runs in the scope too.
        let future = match deadline {
            Some(deadline) => deadline.scope_sync(|| self.inner.call(request)),
            None => self.inner.call(request),
        };
        ReceiveDeadlineFuture::new(future, deadline)
    }
}

fn timeout_of(name: &HeaderName, max: Duration, headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| {
            let timeout = decode_timeout(value.as_bytes());
            if timeout.is_none() {
                malformed(name, value.as_bytes());
            }
            timeout
        })
        .min()
        .map(|timeout| timeout.min(max))
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn malformed(name: &HeaderName, value: &[u8]) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "staunch::http",
        header = name.as_str(),
        // Bounded and escaped: the value is untrusted input.
        value = %value[..value.len().min(64)].escape_ascii(),
        "ignoring a malformed deadline header"
    );
}

#[cfg(test)]
mod tests {
    use ::http::HeaderValue;

    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(GRPC_TIMEOUT, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_server_takes_the_tightest_valid_value_and_clamps_it() {
        let layer = ReceiveDeadlineLayer::new().with_max_timeout(Duration::from_secs(10));
        let secs = |n| Some(Duration::from_secs(n));
        assert_eq!(layer.timeout_of(&headers(&[])), None);
        assert_eq!(layer.timeout_of(&headers(&[b"5S"])), secs(5));
        assert_eq!(layer.timeout_of(&headers(&[b"99999999H"])), secs(10));
        assert_eq!(layer.timeout_of(&headers(&[b"10S"])), secs(10));
        assert_eq!(layer.timeout_of(&headers(&[b"7S", b"3S"])), secs(3));
        assert_eq!(layer.timeout_of(&headers(&[b"soon", b"3S"])), secs(3));
        assert_eq!(layer.timeout_of(&headers(&[b"soon"])), None);
        assert_eq!(layer.timeout_of(&headers(&[b"-1S"])), None);
        assert_eq!(
            layer.timeout_of(&headers(&[b"0n"])),
            Some(Duration::ZERO),
            "an expired caller"
        );

        let other = ReceiveDeadlineLayer::new()
            .with_header_name(HeaderName::from_static("x-deadline"))
            .with_max_timeout(Duration::from_secs(60));
        assert_eq!(other.timeout_of(&headers(&[b"5S"])), None, "another header");
        let mut custom = HeaderMap::new();
        custom.insert("x-deadline", HeaderValue::from_static("2M"));
        assert_eq!(other.timeout_of(&custom), secs(60));
    }

    #[cfg(feature = "tracing")]
    #[test]
    fn a_malformed_value_is_reported_as_a_tracing_event() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        /// Counts events from this module, nothing else.
        struct Events(Arc<AtomicUsize>);
        impl tracing::Subscriber for Events {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, event: &tracing::Event<'_>) {
                if event.metadata().target() == "staunch::http" {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }

        let count = Arc::new(AtomicUsize::new(0));
        let layer = ReceiveDeadlineLayer::new();
        tracing::subscriber::with_default(Events(count.clone()), || {
            assert_eq!(
                layer.timeout_of(&headers(&[b"5S"])),
                Some(Duration::from_secs(5))
            );
            assert_eq!(count.load(Ordering::SeqCst), 0, "valid values are silent");
            assert_eq!(layer.timeout_of(&headers(&[b"forever", b"\xff\xfe"])), None);
        });
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "one event per malformed value"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_header_bytes_give_at_most_the_servers_maximum(
            values in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..12), 0..4),
            max_ms in 0u64..100_000,
        ) {
            let max = Duration::from_millis(max_ms);
            let layer = ReceiveDeadlineLayer::new().with_max_timeout(max);
            let mut map = HeaderMap::new();
            for value in &values {
                if let Ok(value) = HeaderValue::from_bytes(value) {
                    map.append(GRPC_TIMEOUT, value);
                }
            }
            if let Some(timeout) = layer.timeout_of(&map) {
                proptest::prop_assert!(timeout <= max);
            }
        }

        #[test]
        fn what_the_client_sends_the_server_reads_back_within_one_unit(nanos in proptest::num::u64::ANY) {
            let sent = Duration::from_nanos(nanos);
            let mut map = HeaderMap::new();
            map.insert(GRPC_TIMEOUT, encode_timeout(sent).to_header_value());
            let layer = ReceiveDeadlineLayer::new().with_max_timeout(Duration::MAX);
            let read = layer.timeout_of(&map).expect("a valid header");
            proptest::prop_assert!(read <= sent);
            proptest::prop_assert!(sent - read <= sent / 100_000 + Duration::from_nanos(1));
        }
    }

    #[test]
    fn a_malformed_value_of_any_bytes_is_ignored_without_panicking() {
        let layer = ReceiveDeadlineLayer::new();
        for value in [&b"\x80\xff"[..], b"1\x7f", b"", b"            "] {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                let mut map = HeaderMap::new();
                map.insert(GRPC_TIMEOUT, value);
                assert_eq!(layer.timeout_of(&map), None);
            }
        }
    }
}
