//! The idempotency gate: which requests may be sent again, and what "never reached the server"
//! looks like.

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::io;

use ::http::{Extensions, Method, Request};

#[cfg(feature = "tower")]
use crate::classify::Class;

/// Whether a request may be sent again after a failed attempt. Set it per request as a request
/// extension to override the default of its method ([`Replay::of`]).
///
/// # Examples
///
/// ```
/// use http::{Method, Request};
/// use staunch::http::Replay;
///
/// let get = Request::get("http://example.com/").body(()).unwrap();
/// assert_eq!(Replay::of(&get), Replay::Safe);
/// let post = Request::post("http://example.com/orders").body(()).unwrap();
/// assert_eq!(Replay::of(&post), Replay::IfNotSent);
///
/// // A POST carrying an idempotency key the server deduplicates on is safe to send again.
/// let keyed = Request::post("http://example.com/orders")
///     .header("idempotency-key", "3f0c…")
///     .extension(Replay::Safe)
///     .body(())
///     .unwrap();
/// assert_eq!(Replay::of(&keyed), Replay::Safe);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Replay {
    /// Sending it twice has the effect of sending it once (an idempotent method): every failure
    /// the classifier calls retriable is retried.
    Safe,
    /// Retried only when it never reached the server (a connect failure); any response, and any
    /// error after the request may have been sent, ends the call.
    IfNotSent,
    /// Never retried; no copy of the request is even made.
    Never,
}

impl Replay {
    /// The default for `method`: [`Safe`](Self::Safe) for the methods RFC 9110 defines as
    /// idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), [`IfNotSent`](Self::IfNotSent)
    /// for the others (POST, PATCH, CONNECT and extension methods).
    pub fn for_method(method: &Method) -> Self {
        match *method {
            Method::GET
            | Method::HEAD
            | Method::OPTIONS
            | Method::TRACE
            | Method::PUT
            | Method::DELETE => Self::Safe,
            _ => Self::IfNotSent,
        }
    }

    /// The request's `Replay` extension if it has one, else the default for its method.
    pub fn of<B>(request: &Request<B>) -> Self {
        Self::from_parts(request.extensions(), request.method())
    }

    /// The `Replay` in `extensions` if there is one, else the default for `method`: for
    /// clients whose requests keep their extensions apart (reqwest-middleware).
    pub(crate) fn from_parts(extensions: &Extensions, method: &Method) -> Self {
        extensions
            .get::<Self>()
            .copied()
            .unwrap_or_else(|| Self::for_method(method))
    }

    /// The class of an attempt at a request with this `Replay`, which the classifier called
    /// `class`: a retriable class stays retriable only if sending the request again is safe,
    /// or if `never_sent` (asked only then) says that this attempt never reached the server.
    /// The one rule of every idempotency gate.
    #[cfg(feature = "tower")]
    pub(crate) fn gate(self, class: Class, never_sent: impl FnOnce() -> bool) -> Class {
        if !class.is_retriable() {
            return class;
        }
        match self {
            Self::Safe => class,
            Self::IfNotSent if never_sent() => class,
            Self::IfNotSent | Self::Never => Class::Permanent,
        }
    }
}

/// Whether a client error means the request never reached the server, so that even a
/// non-idempotent request may be sent again. See [`is_connect_failure`] for the default rule.
///
/// Implemented by [`SourceChain`] and by every `Fn(&E) -> bool`.
pub trait ConnectFailure<E> {
    /// Whether `error` happened before any byte of the request could reach the server.
    fn is_connect_failure(&self, error: &E) -> bool;
}

impl<E, F: Fn(&E) -> bool> ConnectFailure<E> for F {
    #[inline]
    fn is_connect_failure(&self, error: &E) -> bool {
        self(error)
    }
}

/// The default [`ConnectFailure`] for error types that implement `std::error::Error`:
/// [`is_connect_failure`] on the error and its `source()` chain.
///
/// For boxed errors (`Box<dyn Error + Send + Sync>`, which is not itself an `Error`), use a
/// closure: `|e: &BoxError| staunch::http::is_connect_failure(&**e)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceChain;

impl<E: StdError + 'static> ConnectFailure<E> for SourceChain {
    #[inline]
    fn is_connect_failure(&self, error: &E) -> bool {
        is_connect_failure(error)
    }
}

/// The default test for "the request never reached the server", without depending on any
/// client crate. True if `error` or any error in its `source()` chain is:
///
/// - an [`io::Error`] of kind [`ConnectionRefused`](io::ErrorKind::ConnectionRefused): the
///   server's host answered the connect with a reset, so no request was sent;
/// - hyper-util's legacy client error of kind `Connect` (what its `is_connect()` reports),
///   recognised by its display text, `client error (Connect)`: connecting failed (refused, DNS,
///   connect timeout, TLS handshake), so the request was never written. reqwest's errors wrap
///   that error, so they are recognised through their chain too.
///
/// Anything else counts as possibly sent: a reset or timeout after connecting may come after
/// the server acted on the request, and a non-idempotent request must not be repeated then.
/// A client with other error types can set its own rule on
/// [`IdempotencyGate::with_connect_failure`](super::IdempotencyGate::with_connect_failure).
///
/// # Examples
///
/// ```
/// use std::io;
/// use staunch::http::is_connect_failure;
///
/// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
/// assert!(is_connect_failure(&refused));
/// let wrapped = io::Error::new(io::ErrorKind::Other, refused);
/// assert!(is_connect_failure(&wrapped));
/// assert!(!is_connect_failure(&io::Error::from(io::ErrorKind::ConnectionReset)));
/// ```
pub fn is_connect_failure(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    // A cycle in a broken source() chain must not hang us: 32 levels is far deeper than any
    // real client's wrapping.
    for _ in 0..32 {
        let Some(error) = next else {
            return false;
        };
        if displays_as(error, "client error (Connect)") {
            return true;
        }
        if let Some(io) = error.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::ConnectionRefused {
                return true;
            }
            // An io::Error's `source()` skips the error it wraps; look at that one first.
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
                continue;
            }
        }
        next = error.source();
    }
    false
}

/// Whether `value` displays exactly as `expected`, without allocating.
fn displays_as(value: &dyn fmt::Display, expected: &str) -> bool {
    struct Matcher<'a> {
        rest: &'a str,
        ok: bool,
    }
    impl fmt::Write for Matcher<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            match self.rest.strip_prefix(s) {
                Some(rest) => {
                    self.rest = rest;
                    Ok(())
                }
                None => {
                    self.ok = false;
                    Err(fmt::Error)
                }
            }
        }
    }
    let mut matcher = Matcher {
        rest: expected,
        ok: true,
    };
    let _ = write!(matcher, "{value}");
    matcher.ok && matcher.rest.is_empty()
}

#[cfg(feature = "tower")]
pub use gate::{CloneBody, CopyBody, IdempotencyGate};

#[cfg(feature = "tower")]
mod gate {
    use std::fmt;

    use ::http::Request;

    use super::{ConnectFailure, Replay, SourceChain};
    use crate::classify::Class;
    use crate::retry::{MakeRetryRequest, Reclassify};

    /// Copies each `http::Request` for another attempt, and allows that attempt only when the
    /// request is safe to send again: the request copier of
    /// [`RetryLayer::with_retry_request`](crate::retry::RetryLayer::with_retry_request) for
    /// HTTP clients.
    ///
    /// The copy has the same method, URI, version, headers and extensions, and a body copied by
    /// `F` ([`CloneBody`] by default). When the policy's classifier calls a failure retriable,
    /// the gate looks at the request's [`Replay`] ([`Replay::of`]):
    ///
    /// - [`Safe`](Replay::Safe) (GET, HEAD, OPTIONS, TRACE, PUT, DELETE by default): retried.
    /// - [`IfNotSent`](Replay::IfNotSent) (POST, PATCH, ...): retried only if the outcome is an
    ///   error that the [`ConnectFailure`] rule `P` (default: [`SourceChain`]) says came before
    ///   the request was sent; otherwise it becomes [`Permanent`](Class::Permanent).
    /// - [`Never`](Replay::Never): no copy is made, so the first attempt is the last.
    ///
    /// Classes that are not retriable pass through unchanged, and the gate changes retry only:
    /// a breaker with the same classifier still counts a POST's 503 as a failure.
    ///
    /// The gate acts through [`Reclassify`], which [`RetryLayer`](crate::retry::RetryLayer) and
    /// [`PipelineLayer`](crate::pipeline::PipelineLayer) consult. In a pipeline, an attempt that
    /// timed out may have reached the server, so a POST that timed out is not sent again.
    ///
    /// # Examples
    ///
    /// ```
    /// use staunch::http::{HttpClassifier, IdempotencyGate};
    /// use staunch::retry::RetryLayer;
    /// use staunch::{Retry, RetryConfig};
    ///
    /// let retry = Retry::new(RetryConfig::new())?.classify(HttpClassifier::new());
    /// let layer = RetryLayer::new(retry).with_retry_request(IdempotencyGate::new());
    /// // ServiceBuilder::new().layer(layer).service(client)
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    #[derive(Clone, Copy, Default)]
    pub struct IdempotencyGate<F = CloneBody, P = SourceChain> {
        body: F,
        connect_failure: P,
    }

    impl IdempotencyGate {
        /// Copies bodies with `Clone` and recognises connect failures with [`SourceChain`].
        pub const fn new() -> Self {
            Self {
                body: CloneBody,
                connect_failure: SourceChain,
            }
        }
    }

    impl<F, P> IdempotencyGate<F, P> {
        /// Copies request bodies with `copy_body` (any `Fn(&B) -> Option<B>`; `None` makes the
        /// current attempt the last).
        ///
        /// ```
        /// use http::Request;
        /// use staunch::http::IdempotencyGate;
        /// use staunch::retry::MakeRetryRequest;
        ///
        /// let request = Request::get("http://example.com/").body(String::from("{}")).unwrap();
        /// let copy = IdempotencyGate::new().retry_request(&request).unwrap();
        /// assert_eq!((copy.uri(), copy.body()), (request.uri(), request.body()));
        ///
        /// // A body that cannot be replayed: one attempt only.
        /// let once = IdempotencyGate::new().with_body(|_: &String| None);
        /// assert!(once.retry_request(&request).is_none());
        /// ```
        pub fn with_body<F2>(self, copy_body: F2) -> IdempotencyGate<F2, P> {
            IdempotencyGate {
                body: copy_body,
                connect_failure: self.connect_failure,
            }
        }

        /// Recognises "never reached the server" with `rule` (any `Fn(&E) -> bool`), for client
        /// error types the default does not know, or boxed errors:
        ///
        /// ```
        /// use staunch::http::{IdempotencyGate, is_connect_failure};
        /// use staunch::retry::BoxError;
        ///
        /// let gate = IdempotencyGate::new()
        ///     .with_connect_failure(|e: &BoxError| is_connect_failure(&**e));
        /// ```
        pub fn with_connect_failure<P2>(self, rule: P2) -> IdempotencyGate<F, P2> {
            IdempotencyGate {
                body: self.body,
                connect_failure: rule,
            }
        }
    }

    impl<B, F: CopyBody<B>, P> MakeRetryRequest<Request<B>> for IdempotencyGate<F, P> {
        fn retry_request(&self, request: &Request<B>) -> Option<Request<B>> {
            if Replay::of(request) == Replay::Never {
                return None;
            }
            let mut copy = Request::new(self.body.copy_body(request.body())?);
            *copy.method_mut() = request.method().clone();
            *copy.uri_mut() = request.uri().clone();
            *copy.version_mut() = request.version();
            *copy.headers_mut() = request.headers().clone();
            *copy.extensions_mut() = request.extensions().clone();
            Some(copy)
        }
    }

    impl<B, T, E, F, P> Reclassify<Request<B>, T, E> for IdempotencyGate<F, P>
    where
        P: ConnectFailure<E>,
    {
        fn reclassify(&self, request: &Request<B>, result: &Result<T, E>, class: Class) -> Class {
            Replay::of(request).gate(
                class,
                || matches!(result, Err(e) if self.connect_failure.is_connect_failure(e)),
            )
        }

        fn reclassify_unanswered(&self, request: &Request<B>, class: Class) -> Class {
            // A timed-out request may have reached the server: only a safe one goes again.
            Replay::of(request).gate(class, || false)
        }
    }

    impl<F, P> fmt::Debug for IdempotencyGate<F, P> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("IdempotencyGate").finish_non_exhaustive()
        }
    }

    /// Copies a request body for another attempt, or `None` if it cannot be.
    ///
    /// Implemented by [`CloneBody`] (bodies that are `Clone`, such as
    /// `http_body_util::Full<Bytes>`) and by every `Fn(&B) -> Option<B>` (a streaming body that
    /// can be replayed from a buffer, say).
    pub trait CopyBody<B> {
        /// A copy of `body`, or `None` to make the current attempt the last.
        fn copy_body(&self, body: &B) -> Option<B>;
    }

    /// Copies bodies with `Clone`.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct CloneBody;

    impl<B: Clone> CopyBody<B> for CloneBody {
        #[inline]
        fn copy_body(&self, body: &B) -> Option<B> {
            Some(body.clone())
        }
    }

    impl<B, F: Fn(&B) -> Option<B>> CopyBody<B> for F {
        #[inline]
        fn copy_body(&self, body: &B) -> Option<B> {
            self(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(Box<dyn StdError + Send + Sync>, &'static str);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.1)
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn methods_default_to_their_rfc_idempotency() {
        for method in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(Replay::for_method(&method), Replay::Safe, "{method}");
        }
        for method in ["POST", "PATCH", "CONNECT", "PURGE", "get"] {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(Replay::for_method(&method), Replay::IfNotSent, "{method}");
        }
        let mut get = Request::new(());
        get.extensions_mut().insert(Replay::Never);
        assert_eq!(Replay::of(&get), Replay::Never, "the extension wins");
    }

    #[test]
    fn connect_failures_are_found_anywhere_in_the_chain() {
        let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(is_connect_failure(&refused()));
        let deep = Wrapper(
            Box::new(Wrapper(Box::new(refused()), "connect error")),
            "request failed",
        );
        assert!(is_connect_failure(&deep));
        let hyper_like = Wrapper(
            Box::new(io::Error::other("dns error")),
            "client error (Connect)",
        );
        assert!(is_connect_failure(&hyper_like));

        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::TimedOut,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
        ] {
            assert!(!is_connect_failure(&io::Error::from(kind)), "{kind:?}");
        }
        let sent = Wrapper(
            Box::new(io::Error::other("eof")),
            "client error (SendRequest)",
        );
        assert!(!is_connect_failure(&sent));
        let prefix = Wrapper(
            Box::new(io::Error::other("x")),
            "client error (Connect) and more",
        );
        assert!(!is_connect_failure(&prefix));
    }

    #[test]
    fn a_cyclic_source_chain_terminates() {
        #[derive(Debug)]
        struct Loop;
        impl fmt::Display for Loop {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("loop")
            }
        }
        impl StdError for Loop {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&Loop)
            }
        }
        assert!(!is_connect_failure(&Loop));
    }

    #[test]
    fn displays_as_matches_exactly() {
        assert!(displays_as(&"abc", "abc"));
        assert!(!displays_as(&"ab", "abc"));
        assert!(!displays_as(&"abcd", "abc"));
        assert!(!displays_as(&"", "abc"));
        assert!(displays_as(&format_args!("{}{}", "a", "bc"), "abc"));
    }

    #[cfg(feature = "tower")]
    mod gate {
        use ::http::{Request, Response};

        use super::super::*;
        use crate::classify::{Class, Classify};
        use crate::http::HttpClassifier;
        use crate::retry::{MakeRetryRequest, Reclassify};

        fn request(method: Method, replay: Option<Replay>) -> Request<String> {
            let mut request = Request::new(String::from("body"));
            *request.method_mut() = method;
            if let Some(replay) = replay {
                request.extensions_mut().insert(replay);
            }
            request
        }

        fn response(status: u16) -> Result<Response<()>, io::Error> {
            Ok(Response::builder().status(status).body(()).unwrap())
        }

        fn err(kind: io::ErrorKind) -> Result<Response<()>, io::Error> {
            Err(io::Error::from(kind))
        }

        fn gated<P: ConnectFailure<io::Error>>(
            gate: &IdempotencyGate<CloneBody, P>,
            request: &Request<String>,
            result: &Result<Response<()>, io::Error>,
        ) -> Class {
            let class = HttpClassifier::new().classify(result);
            gate.reclassify(request, result, class)
        }

        #[test]
        fn the_gate_table() {
            use io::ErrorKind::{ConnectionRefused as Refused, ConnectionReset as Reset};
            let gate = IdempotencyGate::new();
            let get = request(Method::GET, None);
            let post = request(Method::POST, None);
            let keyed_post = request(Method::POST, Some(Replay::Safe));
            let fragile_get = request(Method::GET, Some(Replay::IfNotSent));
            let never = request(Method::PUT, Some(Replay::Never));
            let t = Class::Transient;
            let p = Class::Permanent;
            let table = [
                (&get, response(503), t),
                (&get, err(Reset), t),
                (&get, err(Refused), t),
                (&get, response(404), p),
                (&get, response(200), Class::Success),
                (&post, response(503), p),
                (&post, err(Reset), p),
                (&post, err(Refused), t),
                (&post, response(200), Class::Success),
                (&post, response(404), p),
                (&keyed_post, response(503), t),
                (&keyed_post, err(Reset), t),
                (&fragile_get, response(503), p),
                (&fragile_get, err(Refused), t),
                (&never, response(503), p),
                (&never, err(Refused), p),
            ];
            for (i, (request, result, expected)) in table.into_iter().enumerate() {
                let class = gated(&gate, request, &result);
                assert_eq!(class, expected, "row {i}: {} {result:?}", request.method());
            }
            let ignored = gate.reclassify(&post, &response(503), Class::Ignored);
            assert_eq!(
                ignored,
                Class::Ignored,
                "non-retriable classes pass through"
            );
        }

        #[test]
        fn a_custom_connect_rule_and_hints_pass_through() {
            let gate = IdempotencyGate::new()
                .with_connect_failure(|e: &io::Error| e.kind() == io::ErrorKind::NotConnected);
            let post = request(Method::POST, None);
            assert_eq!(
                gated(&gate, &post, &err(io::ErrorKind::NotConnected)),
                Class::Transient
            );
            assert_eq!(
                gated(&gate, &post, &err(io::ErrorKind::ConnectionRefused)),
                Class::Permanent
            );
            let get = request(Method::GET, None);
            let limited: Result<Response<()>, io::Error> = Ok(Response::builder()
                .status(429)
                .header("retry-after", "2")
                .body(())
                .unwrap());
            assert_eq!(
                gated(&gate, &get, &limited),
                Class::RetryAfter(std::time::Duration::from_secs(2))
            );
        }

        #[test]
        fn copies_everything_and_honours_never() {
            let mut original = Request::builder()
                .method(Method::PATCH)
                .uri("http://example.com/a?b=c")
                .version(::http::Version::HTTP_2)
                .header("x-one", "1")
                .extension(7u32)
                .body(String::from("payload"))
                .unwrap();
            let copy = IdempotencyGate::new().retry_request(&original).unwrap();
            assert_eq!(copy.method(), Method::PATCH);
            assert_eq!(copy.uri(), "http://example.com/a?b=c");
            assert_eq!(copy.version(), ::http::Version::HTTP_2);
            assert_eq!(copy.headers()["x-one"], "1");
            assert_eq!(copy.extensions().get::<u32>(), Some(&7));
            assert_eq!(copy.body(), "payload");

            let refuse = IdempotencyGate::new().with_body(|_: &String| None);
            assert!(refuse.retry_request(&original).is_none());
            original.extensions_mut().insert(Replay::Never);
            assert!(IdempotencyGate::new().retry_request(&original).is_none());
        }
    }
}
