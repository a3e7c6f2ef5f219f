//! tower layers: a limit per attempt, and a deadline for everything below.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use super::{AttemptTimeout, Deadline, Elapsed, Scoped};
use crate::Clock;
use crate::retry::BoxError;

/// Limits each call of the inner service with an [`AttemptTimeout`], cut from the deadline in
/// scope. A call made after the deadline fails at once with [`Elapsed`] without reaching the
/// inner service. Errors are boxed; downcast to [`Elapsed`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::deadline::{AttemptTimeout, AttemptTimeoutLayer, Elapsed};
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let mut svc = ServiceBuilder::new()
///     .layer(AttemptTimeoutLayer::new(AttemptTimeout::fixed(Duration::from_millis(500))))
///     .service(service_fn(|()| async {
///         tokio::time::sleep(Duration::from_secs(1)).await;
///         Ok::<_, std::io::Error>("late")
///     }));
/// let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
/// assert!(err.downcast_ref::<Elapsed>().is_some());
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct AttemptTimeoutLayer {
    timeout: AttemptTimeout,
}

impl AttemptTimeoutLayer {
    /// Limits every call with `timeout`.
    pub const fn new(timeout: AttemptTimeout) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for AttemptTimeoutLayer {
    type Service = AttemptTimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AttemptTimeoutService {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service of [`AttemptTimeoutLayer`].
#[derive(Clone, Debug)]
pub struct AttemptTimeoutService<S> {
    inner: S,
    timeout: AttemptTimeout,
}

impl<S> AttemptTimeoutService<S> {
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

impl<S, Req> Service<Req> for AttemptTimeoutService<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let now = Clock::system().now();
        let deadline = Deadline::current();
        match self.timeout.timeout_at(now, deadline) {
            None => TimeoutFuture::expired(),
            Some(timeout) => {
                let clipped = deadline.is_some_and(|d| timeout == d.remaining_at(now));
                TimeoutFuture::new(self.inner.call(request), timeout, clipped)
            }
        }
    }
}

pin_project! {
    /// The response future of [`AttemptTimeoutService`] and [`DeadlineService`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: Option<F>,
        #[pin]
        sleep: Option<Sleep>,
        elapsed: Elapsed,
    }
}

impl<F> TimeoutFuture<F> {
    fn new(inner: F, timeout: Duration, clipped: bool) -> Self {
        Self {
            inner: Some(inner),
            sleep: Some(tokio::time::sleep(timeout)),
            elapsed: Elapsed::new(timeout, clipped),
        }
    }

    fn expired() -> Self {
        Self {
            inner: None,
            sleep: None,
            elapsed: Elapsed::new(Duration::ZERO, true),
        }
    }
}

impl<F, T, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // With no inner future the deadline had passed at the call: fail at once.
        if let Some(inner) = this.inner.as_pin_mut()
            && let Poll::Ready(output) = inner.poll(cx)
        {
            return Poll::Ready(output.map_err(Into::into));
        }
        if let Some(sleep) = this.sleep.as_pin_mut() {
            ready!(sleep.poll(cx));
        }
        Poll::Ready(Err((*this.elapsed).into()))
    }
}

/// Puts a deadline `timeout` from each call in scope for the inner service (the tighter of it
/// and any deadline already in scope), and fails the call with [`Elapsed`] when it passes.
///
/// The inner service's `call` runs inside the scope too, so a layer below that reads
/// [`Deadline::current`] when called (retry does) sees it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::deadline::DeadlineLayer;
/// use staunch::Deadline;
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let mut svc = ServiceBuilder::new()
///     .layer(DeadlineLayer::new(Duration::from_secs(5)))
///     .service(service_fn(|()| async { Ok::<_, std::io::Error>(Deadline::current().is_some()) }));
/// assert!(svc.ready().await.unwrap().call(()).await.unwrap());
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    timeout: Duration,
}

impl DeadlineLayer {
    /// A deadline `timeout` after each call starts.
    pub const fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service of [`DeadlineLayer`].
#[derive(Clone, Debug)]
pub struct DeadlineService<S> {
    inner: S,
    timeout: Duration,
}

impl<S> DeadlineService<S> {
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

impl<S, Req> Service<Req> for DeadlineService<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TimeoutFuture<Scoped<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let now = Clock::system().now();
        let mine = Deadline::after_from(now, self.timeout);
        let deadline = Deadline::current().map_or(mine, |outer| outer.min(mine));
        if deadline.is_expired_at(now) {
            return TimeoutFuture::expired();
        }
        let inner = deadline.scope_sync(|| self.inner.call(request));
        TimeoutFuture::new(deadline.scope(inner), deadline.remaining_at(now), true)
    }
}
