//! [`Staunch`]: a `reqwest_middleware::Middleware` that runs each request through a
//! [`Pipeline`] (feature `reqwest`).
//!
//! The middleware adds no policy of its own: it drives the pipeline's tower runner (the one the
//! [`PipelineLayer`] runs, with its idempotency hook) over the rest of the middleware chain, so
//! every policy a pipeline has, or gains, applies to reqwest requests in the same order and with
//! the same rules.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use ::http::Extensions;
use ::http::header::{self, HeaderName};
use ::reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use tower_layer::Layer;
use tower_service::Service;

use super::deadline_header::{GRPC_TIMEOUT, write_deadline};
use super::{Replay, is_connect_failure};
use crate::classify::{AllTransient, Class, Classify};
use crate::pipeline::{NoFallback, PipelineLayer, RecoverBoxed};
use crate::retry::{BoxError, MakeRetryRequest, Reclassify, Stopped};
use crate::{ConfigError, Deadline, Pipeline};

/// A [`reqwest_middleware::Middleware`] that runs every request through a staunch
/// [`Pipeline`]: retry (with its budget), the circuit breaker, the attempt timeout and the
/// overall deadline, in the pipeline's order, plus what an HTTP client needs around them:
///
/// - **The deadline travels.** Each attempt carries the time it has left in a `grpc-timeout`
///   header ([`encode_timeout`](super::encode_timeout); another name with
///   [`with_deadline_header`](Self::with_deadline_header)), so the server can stop when this
///   client stops waiting. The deadline is the tighter of the one in scope
///   ([`Deadline::scope`]), a [`Deadline`] request extension, the pipeline's
///   [`timeout`](Pipeline::timeout) and its attempt timeout.
/// - **Retry-After is honoured** when the pipeline classifies with
///   [`HttpClassifier`](super::HttpClassifier), which reads reqwest's responses and errors with
///   the same rules as `http::Response`s: 5xx, 408 and 429 are transient, with the server's
///   hint when it sends one; other 4xx are permanent; a client error is transient.
/// - **Only what is safe is sent twice.** The idempotency rules of
///   [`IdempotencyGate`](super::IdempotencyGate) apply: a GET, PUT or DELETE is retried, a POST
///   or PATCH only when the connection could not even be made ([`is_connect_failure`]). A
///   [`Replay`] request extension overrides the method's default.
/// - **A streaming body is sent once.** A request whose body cannot be copied
///   (`Request::try_clone` is `None`) is sent, but never again; when it fails in a way that
///   would have been retried, the error says so ([`NotRetried::StreamingBody`]).
///
/// Per-request settings go in reqwest-middleware's extensions:
/// `client.post(url).with_extension(Replay::Safe)` for a POST the server deduplicates, and
/// `.with_extension(Deadline::after(..))` for a deadline of its own.
///
/// # Classification
///
/// The pipeline's classifier decides, for the retry and the breaker alike, on
/// `Result<reqwest::Response, reqwest_middleware::Error>`. Give the pipeline an
/// [`HttpClassifier`](super::HttpClassifier) (as below), or a closure over that `Result`. A
/// pipeline left with the default classifier counts only errors as failures, so a `503` would
/// be neither retried nor seen by the breaker.
///
/// # What the timers cover
///
/// An attempt ends when the response's head arrives, so the attempt timeout and the deadline
/// bound the exchange up to the status and headers. Reading the body afterwards is the
/// caller's to bound: `tokio::time::timeout(deadline.remaining(), response.bytes())`, or
/// reqwest's own `timeout`.
///
/// # Errors
///
/// A response the pipeline gave up on (a `503` after the last attempt) comes back as the
/// response it is. An error comes back as [`reqwest_middleware::Error::Middleware`] holding a
/// [`Stopped`]: why the call stopped ([`StopReason`](crate::StopReason)), how many attempts ran,
/// and the last failure as its [`source`](std::error::Error::source): the
/// `reqwest_middleware::Error` of the last attempt, an [`Elapsed`](crate::deadline::Elapsed)
/// or a [`CircuitOpen`](crate::breaker::CircuitOpen). When a failure that would have been
/// retried was not, because of the request, a [`NotRetried`] saying why is wrapped around the
/// `Stopped` as context; both downcast from the `anyhow::Error` inside.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use reqwest_middleware::ClientBuilder;
/// use staunch::backoff::Backoff;
/// use staunch::breaker::{BreakerConfig, CircuitBreaker};
/// use staunch::deadline::AttemptTimeout;
/// use staunch::http::{HttpClassifier, Staunch};
/// use staunch::retry::Stopped;
/// use staunch::{Deadline, Pipeline, Retry, RetryConfig, StopReason};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let retry = Retry::new(
///     RetryConfig::new()
///         .with_max_attempts(3)
///         .with_backoff(Backoff::exponential(Duration::from_millis(100))),
/// )?
/// .classify(HttpClassifier::new());
/// let pipeline = Pipeline::new()
///     .retry(retry)
///     .breaker(CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?)
///     .attempt_timeout(AttemptTimeout::fixed(Duration::from_secs(2)))?;
///
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(Staunch::new(pipeline))
/// #   .with(busy_once)
///     .build();
///
/// // The first answer is a 503 with `Retry-After: 1`: the retry waits a second, then succeeds.
/// let response = Deadline::after(Duration::from_secs(5))
///     .scope(client.get("http://inventory.internal/items/7").send())
///     .await?;
/// assert_eq!(response.status(), 200);
///
/// // When a call fails, why it stopped:
/// fn stop_reason(err: &reqwest_middleware::Error) -> Option<StopReason> {
///     match err {
///         reqwest_middleware::Error::Middleware(err) => {
///             err.downcast_ref::<Stopped>().map(Stopped::reason)
///         }
///         reqwest_middleware::Error::Reqwest(_) => None,
///     }
/// }
/// # Ok(())
/// # }
/// # // A stand-in for the network: the last middleware answers, busy the first time.
/// # fn busy_once<'a>(
/// #     _: reqwest::Request,
/// #     _: &'a mut http::Extensions,
/// #     _: reqwest_middleware::Next<'a>,
/// # ) -> std::pin::Pin<Box<dyn std::future::Future<Output = reqwest_middleware::Result<reqwest::Response>> + Send + 'a>> {
/// #     use std::sync::atomic::{AtomicU32, Ordering};
/// #     static CALLS: AtomicU32 = AtomicU32::new(0);
/// #     let status = if CALLS.fetch_add(1, Ordering::SeqCst) == 0 { 503 } else { 200 };
/// #     let response = http::Response::builder().status(status).header("retry-after", "1");
/// #     Box::pin(std::future::ready(Ok(response.body("").unwrap().into())))
/// # }
/// ```
pub struct Staunch<C = AllTransient, F = NoFallback> {
    layer: PipelineLayer<C, F, Gate>,
    header: Option<HeaderName>,
}

impl<C: Clone, F: Clone> Staunch<C, F> {
    /// Runs every request through `pipeline`, sending the deadline in `grpc-timeout`.
    ///
    /// The pipeline is cloned once (its breaker and budget stay shared with the original), so
    /// its classifier and fallback must be `Clone`.
    pub fn new(pipeline: Pipeline<C, F>) -> Self {
        Self {
            layer: pipeline.into_layer().with_retry_request(Gate),
            header: Some(GRPC_TIMEOUT),
        }
    }
}

impl<C, F> Staunch<C, F> {
    /// Sends the deadline in the header `name` instead of `grpc-timeout` (same value format,
    /// [`encode_timeout`](super::encode_timeout)); the server's
    /// [`ReceiveDeadlineLayer::with_header_name`](super::ReceiveDeadlineLayer::with_header_name)
    /// reads it back.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for `deadline_header` when `name` is a header that HTTP itself uses
    /// for framing, routing or content (`host`, `content-length`, `connection`, ...): writing a
    /// timeout there would break the request.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::HeaderName;
    /// use staunch::Pipeline;
    /// use staunch::http::Staunch;
    ///
    /// let staunch = Staunch::new(Pipeline::new())
    ///     .with_deadline_header(HeaderName::from_static("x-request-timeout"))?;
    ///
    /// let err = Staunch::new(Pipeline::new())
    ///     .with_deadline_header(http::header::CONTENT_LENGTH)
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "deadline_header");
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn with_deadline_header(mut self, name: HeaderName) -> Result<Self, ConfigError> {
        if RESERVED.contains(&name) {
            return Err(ConfigError::new(
                "deadline_header",
                format!(
                    "`{name}` is a header HTTP itself uses; choose one of your own, such as \
                     `grpc-timeout` (the default) or `x-request-timeout`"
                ),
            ));
        }
        self.header = Some(name);
        Ok(self)
    }

    /// Sends no deadline header (for servers that must not learn the client's deadline). The
    /// deadline still bounds the call here.
    ///
    /// # Examples
    ///
    /// ```
    /// use staunch::Pipeline;
    /// use staunch::http::Staunch;
    ///
    /// let staunch = Staunch::new(Pipeline::new()).without_deadline_header();
    /// ```
    pub fn without_deadline_header(mut self) -> Self {
        self.header = None;
        self
    }

    /// The pipeline every request runs through.
    ///
    /// # Examples
    ///
    /// ```
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker};
    /// use staunch::http::Staunch;
    /// use staunch::Pipeline;
    ///
    /// let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?;
    /// let staunch = Staunch::new(Pipeline::new().breaker(breaker));
    /// // For a health endpoint: the state of the dependency behind this client.
    /// let state = staunch.pipeline().get_breaker().map(|b| b.state());
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn pipeline(&self) -> &Pipeline<C, F> {
        self.layer.pipeline()
    }
}

/// Headers whose meaning HTTP owns: a deadline written there would break the request.
const RESERVED: [HeaderName; 13] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::EXPECT,
];

impl<C, F> Clone for Staunch<C, F> {
    fn clone(&self) -> Self {
        Self {
            layer: self.layer.clone(),
            header: self.header.clone(),
        }
    }
}

impl<C, F> fmt::Debug for Staunch<C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Staunch")
            .field("pipeline", self.layer.pipeline())
            .field("deadline_header", &self.header)
            .finish()
    }
}

// Written out as `async_trait` expands the trait's method, so that staunch needs no macro
// crate of its own: one boxed future per request, as every reqwest-middleware middleware has.
impl<C, F> Middleware for Staunch<C, F>
where
    C: Classify<Response, reqwest_middleware::Error> + Send + Sync + 'static,
    F: RecoverBoxed<Response, reqwest_middleware::Error> + Send + Sync + 'static,
{
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        req: Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.run(req, extensions, next))
    }
}

impl<C, F> Staunch<C, F>
where
    C: Classify<Response, reqwest_middleware::Error> + Send + Sync + 'static,
    F: RecoverBoxed<Response, reqwest_middleware::Error> + Send + Sync + 'static,
{
    async fn run(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        // Shared by the copies of the request, which the runner's future owns; an `Arc`, as a
        // reference would give the attempts a lifetime of their own, and the runner's future
        // could not then be shown to be `Send`.
        let call = Arc::new(CallState::default());
        let replay = Replay::from_parts(extensions, request.method());
        let explicit = extensions.get::<Deadline>().copied();
        // Each attempt gets its own copy of the extensions, so that what one attempt's
        // middleware leaves there does not leak into the next; the last attempt's come back.
        let attempt = Attempt {
            request: Some(request),
            extensions: extensions.clone(),
            replay,
            call: Arc::clone(&call),
        };
        let mut service = self.layer.layer(Downstream {
            next,
            header: self.header.as_ref(),
        });
        let outcome = {
            // The pipeline reads the deadline in scope when called: call inside the scope.
            let sent = async {
                poll_fn(|cx| service.poll_ready(cx)).await?;
                service.call(attempt).await
            };
            match explicit {
                Some(deadline) => deadline.scope(sent).await,
                None => sent.await,
            }
        };
        if let Some(last) = call.take_extensions() {
            *extensions = last;
        }
        outcome.map_err(|error| into_middleware_error(error, call.not_retried()))
    }
}

/// The error of a call that stopped, as reqwest-middleware carries it: the [`Stopped`], with
/// why the request was not sent again as context when that is the reason.
fn into_middleware_error(error: BoxError, why: Option<NotRetried>) -> reqwest_middleware::Error {
    let error = match error.downcast::<Stopped>() {
        Ok(stopped) => anyhow::Error::new(*stopped),
        Err(other) => anyhow::Error::from_boxed(other),
    };
    reqwest_middleware::Error::Middleware(match why {
        Some(why) => error.context(why),
        None => error,
    })
}

/// Why a request was sent only once although its failure would have been retried. The
/// [`Staunch`] middleware wraps it, as `anyhow` context, around the [`Stopped`] error of such a
/// call.
///
/// # Examples
///
/// ```
/// use staunch::http::NotRetried;
///
/// fn why(err: &reqwest_middleware::Error) -> Option<NotRetried> {
///     match err {
///         reqwest_middleware::Error::Middleware(err) => err.downcast_ref::<NotRetried>().copied(),
///         reqwest_middleware::Error::Reqwest(_) => None,
///     }
/// }
/// assert!(NotRetried::StreamingBody.to_string().contains("stream"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotRetried {
    /// The request's body is a stream (`Request::try_clone` is `None`): it was consumed by the
    /// first attempt and cannot be sent again. Build the body from bytes to allow retries.
    StreamingBody,
    /// The method is not idempotent (POST, PATCH, ...; [`Replay::IfNotSent`]) and the failed
    /// attempt may have reached the server, which may have acted on it.
    MaybeSent,
    /// The request carries [`Replay::Never`].
    ReplayNever,
}

impl NotRetried {
    const fn code(self) -> u8 {
        match self {
            Self::StreamingBody => 1,
            Self::MaybeSent => 2,
            Self::ReplayNever => 3,
        }
    }

    const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::StreamingBody),
            2 => Some(Self::MaybeSent),
            3 => Some(Self::ReplayNever),
            _ => None,
        }
    }
}

impl fmt::Display for NotRetried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::StreamingBody => {
                "not retried: the request body is a stream, which cannot be sent again \
                 (a body built from bytes can be)"
            }
            Self::MaybeSent => {
                "not retried: the method is not idempotent and the request may have reached \
                 the server (mark it `Replay::Safe` if the server deduplicates it)"
            }
            Self::ReplayNever => "not retried: the request is marked `Replay::Never`",
        })
    }
}

impl std::error::Error for NotRetried {}

/// What one call shares between its attempts: the extensions the last attempt left, and why
/// the request was not sent again, if that ended the call.
#[derive(Default)]
struct CallState {
    extensions: Mutex<Option<Extensions>>,
    not_retried: AtomicU8,
}

impl CallState {
    fn take_extensions(&self) -> Option<Extensions> {
        // Never held across an await or a user callback; a poisoned lock still holds a map.
        self.extensions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn keep_extensions(&self, extensions: Extensions) {
        *self
            .extensions
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(extensions);
    }

    fn not_retried(&self) -> Option<NotRetried> {
        NotRetried::from_code(self.not_retried.load(Ordering::Relaxed))
    }
}

/// One attempt's request, as the pipeline's runner copies and sends it.
struct Attempt {
    /// `None` in the copy of a request whose body cannot be copied: a placeholder that lets
    /// the gate see the next failure (and say why there is no retry), never sent.
    request: Option<Request>,
    extensions: Extensions,
    replay: Replay,
    call: Arc<CallState>,
}

impl Attempt {
    /// The class of an attempt that the classifier called `class`, where `self` is the copy
    /// kept for the next attempt: the idempotency gate's rule, then the body's.
    fn gate(&self, class: Class, never_sent: impl FnOnce() -> bool) -> Class {
        if !class.is_retriable() {
            return class;
        }
        let why = match self.replay.gate(class, never_sent) {
            Class::Permanent if self.replay == Replay::Never => NotRetried::ReplayNever,
            Class::Permanent => NotRetried::MaybeSent,
            class if self.request.is_some() => return class,
            _ => NotRetried::StreamingBody,
        };
        // A class made permanent ends the call: this is the reason it ended on.
        self.call.not_retried.store(why.code(), Ordering::Relaxed);
        Class::Permanent
    }
}

/// Copies an [`Attempt`] for the next one, and applies the idempotency rules to its failures.
#[derive(Clone, Copy, Debug)]
struct Gate;

impl MakeRetryRequest<Attempt> for Gate {
    fn retry_request(&self, attempt: &Attempt) -> Option<Attempt> {
        let request = match (&attempt.request, attempt.replay) {
            (Some(request), Replay::Safe | Replay::IfNotSent) => request.try_clone(),
            _ => None,
        };
        // A placeholder carries no extensions: it is never sent.
        let extensions = match request {
            Some(_) => attempt.extensions.clone(),
            None => Extensions::new(),
        };
        Some(Attempt {
            request,
            extensions,
            replay: attempt.replay,
            call: Arc::clone(&attempt.call),
        })
    }
}

impl Reclassify<Attempt, Response, reqwest_middleware::Error> for Gate {
    fn reclassify(
        &self,
        next: &Attempt,
        result: &Result<Response, reqwest_middleware::Error>,
        class: Class,
    ) -> Class {
        next.gate(class, || matches!(result, Err(e) if never_sent(e)))
    }

    fn reclassify_unanswered(&self, next: &Attempt, class: Class) -> Class {
        // A timed-out attempt may have reached the server.
        next.gate(class, || false)
    }
}

/// Whether `error` came before the request could reach the server: a connect failure
/// ([`is_connect_failure`]) in reqwest's error or in the one a later middleware returned. Both
/// are looked at directly: `reqwest_middleware::Error` is transparent, so its own `source()`
/// skips the error it wraps.
fn never_sent(error: &reqwest_middleware::Error) -> bool {
    match error {
        reqwest_middleware::Error::Reqwest(error) => {
            error.is_connect() || is_connect_failure(error)
        }
        reqwest_middleware::Error::Middleware(error) => is_connect_failure(&**error),
    }
}

/// The rest of the middleware chain as a tower service of attempts: the pipeline's runner
/// calls it once per attempt, with the attempt's deadline in scope.
#[derive(Clone)]
struct Downstream<'a> {
    next: Next<'a>,
    header: Option<&'a HeaderName>,
}

type Sent<'a> = Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'a>>;

impl<'a> Service<Attempt> for Downstream<'a> {
    type Response = Response;
    type Error = reqwest_middleware::Error;
    type Future = Sent<'a>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, attempt: Attempt) -> Sent<'a> {
        let Attempt {
            request,
            mut extensions,
            call,
            ..
        } = attempt;
        let Some(mut request) = request else {
            // The gate ends the call before a placeholder could be sent; if a runner ever
            // tried, it gets the reason instead of a request sent twice.
            let refused = reqwest_middleware::Error::middleware(NotRetried::StreamingBody);
            return Box::pin(std::future::ready(Err(refused)));
        };
        if let Some(name) = self.header {
            write_deadline(request.headers_mut(), name, None);
        }
        let next = self.next.clone();
        Box::pin(async move {
            let result = next.run(request, &mut extensions).await;
            call.keep_extensions(extensions);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use ::http::Method;
    use ::reqwest::Url;

    use super::*;

    fn attempt(call: &Arc<CallState>, method: Method, body: Option<::reqwest::Body>) -> Attempt {
        let mut request = Request::new(method, Url::parse("http://example.com/").unwrap());
        *request.body_mut() = body;
        let replay = Replay::for_method(request.method());
        Attempt {
            request: Some(request),
            extensions: Extensions::new(),
            replay,
            call: Arc::clone(call),
        }
    }

    fn stream() -> ::reqwest::Body {
        ::reqwest::Body::wrap(http_body_util::Empty::<bytes::Bytes>::new())
    }

    #[test]
    fn the_gate_keeps_a_safe_copyable_request_retriable() {
        let call = Arc::new(CallState::default());
        let get = attempt(&call, Method::GET, Some("{}".into()));
        let copy = Gate.retry_request(&get).unwrap();
        assert!(copy.request.is_some());
        assert_eq!(copy.gate(Class::Transient, || false), Class::Transient);
        assert_eq!(call.not_retried(), None);
        assert_eq!(copy.gate(Class::Permanent, || false), Class::Permanent);
        assert_eq!(call.not_retried(), None, "not retriable anyway: no reason");
    }

    #[test]
    fn a_streaming_body_is_copied_as_a_placeholder_that_ends_the_call() {
        let call = Arc::new(CallState::default());
        let put = attempt(&call, Method::PUT, Some(stream()));
        let copy = Gate.retry_request(&put).unwrap();
        assert!(copy.request.is_none());
        let hint = Class::RetryAfter(std::time::Duration::from_secs(1));
        assert_eq!(copy.gate(hint, || false), Class::Permanent);
        assert_eq!(call.not_retried(), Some(NotRetried::StreamingBody));
    }

    #[test]
    fn a_post_is_retried_only_when_never_sent() {
        let call = Arc::new(CallState::default());
        let post = attempt(&call, Method::POST, Some("{}".into()));
        let copy = Gate.retry_request(&post).unwrap();
        assert_eq!(copy.gate(Class::Transient, || true), Class::Transient);
        assert_eq!(call.not_retried(), None);
        assert_eq!(copy.gate(Class::Transient, || false), Class::Permanent);
        assert_eq!(call.not_retried(), Some(NotRetried::MaybeSent));
    }

    #[test]
    fn replay_never_makes_no_copy_of_the_request() {
        let call = Arc::new(CallState::default());
        let mut get = attempt(&call, Method::GET, None);
        get.replay = Replay::Never;
        let copy = Gate.retry_request(&get).unwrap();
        assert!(copy.request.is_none());
        assert_eq!(copy.gate(Class::Transient, || true), Class::Permanent);
        assert_eq!(call.not_retried(), Some(NotRetried::ReplayNever));
    }

    #[test]
    fn reserved_headers_are_refused_by_name() {
        for name in RESERVED {
            let err = Staunch::new(Pipeline::new())
                .with_deadline_header(name.clone())
                .unwrap_err();
            assert_eq!(err.field(), "deadline_header");
            assert!(err.message().contains(name.as_str()), "{err}");
        }
        let ok = Staunch::new(Pipeline::new())
            .with_deadline_header(HeaderName::from_static("x-deadline"))
            .unwrap();
        assert_eq!(
            ok.header.as_ref().map(HeaderName::as_str),
            Some("x-deadline")
        );
        assert!(format!("{ok:?}").contains("x-deadline"));
    }

    #[test]
    fn codes_round_trip() {
        for why in [
            NotRetried::StreamingBody,
            NotRetried::MaybeSent,
            NotRetried::ReplayNever,
        ] {
            assert_eq!(NotRetried::from_code(why.code()), Some(why));
        }
        assert_eq!(NotRetried::from_code(0), None);
    }

    /// The middleware's future must be `Send` (reqwest-middleware boxes it as such), and the
    /// middleware `Send + Sync + 'static`.
    #[test]
    fn the_middleware_is_send_and_sync() {
        fn middleware<M: Middleware>() {}
        middleware::<Staunch<crate::http::HttpClassifier>>();
        middleware::<Staunch>();
    }
}
