//! [`ConcurrencyLimit`], its [`Builder`], its permits and its [`Snapshot`].

use std::fmt;
#[cfg(feature = "tokio")]
use std::future::Future;
use std::time::Duration;

use super::shared::{Joined, Outcome, RawPermit, Shared, Wake};
use super::{LimitConfig, Refusal, Refused};
use crate::classify::{AllTransient, Class, Classify};
use crate::loom::Arc;
use crate::retry::CallOptions;
use crate::{Clock, ConfigError, Deadline};

/// A concurrency limit (a bulkhead): at most `limit` calls in flight to one dependency, fixed or
/// adaptive, with an optional bounded FIFO queue. A cheap `Clone` handle (one `Arc`) to state
/// shared by every task and thread that calls the dependency.
///
/// See the [module docs](super) for why and how.
///
/// # Examples
///
/// ```
/// use staunch::limit::{ConcurrencyLimit, LimitConfig, Refusal};
///
/// let limit = ConcurrencyLimit::new(LimitConfig::fixed(2))?;
/// let a = limit.try_acquire().unwrap();
/// let b = limit.try_acquire().unwrap();
/// assert_eq!(limit.try_acquire().unwrap_err().reason(), Refusal::LimitFull);
/// a.success();
/// drop(b); // a permit is a guard: dropped, it frees its slot
/// assert_eq!(limit.snapshot().in_flight, 0);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ConcurrencyLimit {
    pub(crate) shared: Arc<Shared>,
}

/// Builds a [`ConcurrencyLimit`] with a clock or a name.
#[derive(Debug)]
#[must_use]
pub struct Builder {
    config: LimitConfig,
    clock: Clock,
    name: &'static str,
}

impl Builder {
    /// Sets the clock (default [`Clock::system`]), read for adaptive samples and deadlines.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Names the limit in `tracing` events and `metrics` labels (default `"default"`).
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Validates the configuration and builds the limit.
    ///
    /// # Errors
    ///
    /// The configuration is invalid; the error names the setting.
    pub fn build(self) -> Result<ConcurrencyLimit, ConfigError> {
        self.config.validate()?;
        Ok(ConcurrencyLimit {
            shared: Arc::new(Shared::new(self.config, self.clock, self.name)),
        })
    }
}

/// A point-in-time view of a limit, for health endpoints and dashboards: a few atomic loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The current limit.
    pub limit: u32,
    /// Calls holding a slot.
    pub in_flight: u32,
    /// Callers waiting in the queue.
    pub queued: u32,
    /// Refusals so far with [`Refusal::LimitFull`].
    pub refused_limit_full: u64,
    /// Refusals so far with [`Refusal::QueueTimeout`].
    pub refused_queue_timeout: u64,
    /// Refusals so far with [`Refusal::Deadline`].
    pub refused_deadline: u64,
}

/// The error of [`ConcurrencyLimit::call`] and its kin: refused, cancelled while waiting, or
/// the call's own error.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E = std::convert::Infallible> {
    /// Refused without running.
    Refused(Refused),
    /// The caller's cancellation token fired while it waited for a slot.
    Cancelled,
    /// The call ran and failed with this error.
    Inner(E),
}

impl<E> Error<E> {
    /// The refusal, if the limit refused the call.
    pub fn refused(&self) -> Option<&Refused> {
        match self {
            Self::Refused(refused) => Some(refused),
            _ => None,
        }
    }

    /// Takes the call's own error out, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(refused) => refused.fmt(f),
            Self::Cancelled => f.write_str("cancelled while waiting for a slot"),
            Self::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Refused(refused) => Some(refused),
            Self::Cancelled => None,
            Self::Inner(e) => Some(e),
        }
    }
}

impl<E> From<Refused> for Error<E> {
    fn from(refused: Refused) -> Self {
        Self::Refused(refused)
    }
}

impl ConcurrencyLimit {
    /// A limit with `config`, the system clock and the name `"default"`.
    ///
    /// # Errors
    ///
    /// The configuration is invalid (a zero limit, a floor above the ceiling, a `NaN`...); the
    /// error names the setting.
    pub fn new(config: LimitConfig) -> Result<Self, ConfigError> {
        Self::builder(config).build()
    }

    /// A [`Builder`], to set the clock or the name.
    pub fn builder(config: LimitConfig) -> Builder {
        Builder {
            config,
            clock: Clock::system(),
            name: "default",
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LimitConfig {
        &self.shared.config
    }

    /// The current limit: one atomic load.
    pub fn limit(&self) -> u32 {
        self.shared.limit()
    }

    /// The limit, the calls in flight, the queue and the refusals so far.
    pub fn snapshot(&self) -> Snapshot {
        let word = self.shared.load();
        Snapshot {
            limit: self.shared.limit(),
            in_flight: word.in_flight(),
            queued: word.queued(),
            refused_limit_full: self.shared.refusals(Refusal::LimitFull),
            refused_queue_timeout: self.shared.refusals(Refusal::QueueTimeout),
            refused_deadline: self.shared.refusals(Refusal::Deadline),
        }
    }

    /// Takes a slot if one is free and nobody waits for one, without waiting: one
    /// compare-exchange (plus a clock read when the limit adapts).
    ///
    /// # Errors
    ///
    /// [`Refusal::LimitFull`] when every slot is taken or others wait.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Refused> {
        match self.shared.try_take() {
            Some(inflight) => Ok(Permit::new(&self.shared, self.shared.stamp(inflight))),
            None => Err(self.shared.refuse(Refusal::LimitFull)),
        }
    }

    /// Like [`try_acquire`](Self::try_acquire), but the permit holds its own handle, for
    /// futures and structures that must be `'static` (a reference-count increment).
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    #[inline]
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, Refused> {
        match self.shared.try_take() {
            Some(inflight) => Ok(OwnedPermit::new(
                Handle::Shared(self.clone()),
                self.shared.stamp(inflight),
            )),
            None => Err(self.shared.refuse(Refusal::LimitFull)),
        }
    }

    /// Takes a slot, waiting in the queue for one when every slot is taken (if the config has a
    /// queue), for at most `max_wait` and never past the deadline in scope.
    ///
    /// Cancel safe: dropping the future leaves the queue (and returns a slot granted just
    /// before). Waits on tokio's timer.
    ///
    /// # Errors
    ///
    /// [`Refusal::LimitFull`] when the queue is full too (at once),
    /// [`Refusal::QueueTimeout`] after `max_wait`, [`Refusal::Deadline`] at once when the
    /// deadline has passed, or when it comes during the wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::limit::{ConcurrencyLimit, LimitConfig, Refusal};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), staunch::ConfigError> {
    /// let limit = ConcurrencyLimit::new(
    ///     LimitConfig::fixed(1).with_max_queue(8).with_max_wait(Duration::from_millis(100)),
    /// )?;
    /// let held = limit.acquire().await.unwrap();
    /// let refused = limit.acquire().await.unwrap_err(); // waited 100 ms in the queue
    /// assert_eq!(refused.reason(), Refusal::QueueTimeout);
    /// drop(held);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tokio")]
    pub fn acquire(&self) -> super::Acquire<'_> {
        super::Acquire::new(&self.shared, None)
    }

    /// [`acquire`](Self::acquire) for futures that must be `'static`: the future and its
    /// permit hold their own handle (a reference-count increment).
    #[cfg(feature = "tokio")]
    pub fn acquire_owned(&self) -> super::AcquireOwned {
        super::AcquireOwned::new(self.clone(), None)
    }

    /// [`acquire`](Self::acquire) with an explicit deadline (the tighter of it and the one in
    /// scope applies).
    #[cfg(feature = "tokio")]
    pub fn acquire_until(&self, deadline: Deadline) -> super::Acquire<'_> {
        super::Acquire::new(&self.shared, Some(deadline))
    }

    /// Takes a slot, blocking the thread in the queue when every slot is taken (if the config
    /// has a queue), for at most `max_wait`, never past the deadline (the tighter of the
    /// options' and the one in scope), and waking at once when the options' cancellation token
    /// fires. The wait is real time, except on a [`ManualClock`](crate::ManualClock), where a
    /// wait that nothing ends advances the clock by its length at once (as a blocking retry
    /// sleep does).
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] as for [`acquire`](Self::acquire); [`Error::Cancelled`] when the
    /// token fires first.
    pub fn acquire_blocking(&self, options: &CallOptions) -> Result<Permit<'_>, Error> {
        let raw = acquire_blocking(&self.shared, options)?;
        Ok(Permit::new(&self.shared, raw))
    }

    /// Runs `f` in a slot (waiting for one as [`acquire`](Self::acquire) does) and feeds an
    /// adaptive limit its outcome: `Ok` is a success, every `Err` a drop (use
    /// [`call_with`](Self::call_with) to classify).
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] without calling `f`; [`Error::Inner`] with `f`'s error.
    #[cfg(feature = "tokio")]
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(AllTransient, f).await
    }

    /// [`call`](Self::call) with a classifier: a success or a permanent failure is a sample of
    /// the dependency's latency, a transient one (a timeout, a 503) a drop, an ignored outcome
    /// no sample.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    #[cfg(feature = "tokio")]
    pub async fn call_with<C, F, Fut, T, E>(&self, classify: C, f: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.acquire().await?;
        let result = f().await;
        permit.record(classify.classify(&result));
        result.map_err(Error::Inner)
    }

    /// Runs the blocking `f` in a slot, waiting as [`acquire_blocking`](Self::acquire_blocking)
    /// does; `Ok` is a success, every `Err` a drop.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] or [`Error::Cancelled`] without calling `f`; [`Error::Inner`] with
    /// `f`'s error.
    pub fn call_blocking<F, T, E>(&self, options: &CallOptions, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Result<T, E>,
    {
        let permit = self.acquire_blocking(options).map_err(|e| match e {
            Error::Refused(refused) => Error::Refused(refused),
            _ => Error::Cancelled,
        })?;
        let result = f();
        permit.record(AllTransient.classify(&result));
        result.map_err(Error::Inner)
    }
}

impl fmt::Debug for ConcurrencyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

/// What the wait in the queue may last, from `now`: `max_wait`, cut by the deadline (then
/// `true`). `None` when the deadline has passed: refused at once.
pub(crate) fn wait_for(
    shared: &Shared,
    deadline: Option<Deadline>,
    now: std::time::Instant,
) -> Option<(Duration, bool)> {
    let max_wait = shared.config.max_wait;
    match deadline {
        Some(deadline) if deadline.is_expired_at(now) => None,
        Some(deadline) if deadline.remaining_at(now) <= max_wait => {
            Some((deadline.remaining_at(now), true))
        }
        _ => Some((max_wait, false)),
    }
}

fn acquire_blocking(shared: &Shared, options: &CallOptions) -> Result<RawPermit, Error> {
    if let Some(inflight) = shared.try_take() {
        return Ok(shared.stamp(inflight));
    }
    wait_blocking(shared, options)
}

#[cold]
fn wait_blocking(shared: &Shared, options: &CallOptions) -> Result<RawPermit, Error> {
    let cancel = options.cancel.as_ref();
    if cancel.is_some_and(crate::CancellationToken::is_cancelled) {
        return Err(Error::Cancelled);
    }
    if shared.config.max_queue == 0 {
        return Err(shared.refuse(Refusal::LimitFull).into());
    }
    let deadline = Deadline::effective(options.deadline);
    let Some((wait, deadline_first)) = wait_for(shared, deadline, shared.clock.now()) else {
        return Err(shared.refuse(Refusal::Deadline).into());
    };
    let wake = match cancel {
        Some(token) => Wake::Token(token.clone()),
        #[cfg(not(loom))]
        None => Wake::Thread(std::thread::current()),
        #[cfg(loom)]
        None => Wake::None,
    };
    let ticket = match shared.join(wake)? {
        Joined::Acquired(inflight) => return Ok(shared.stamp(inflight)),
        Joined::Queued(ticket) => ticket,
    };
    let granted = |shared: &Shared| shared.poll_ticket(ticket, None) == Some(true);
    let outcome = if shared.clock.is_manual() {
        // Nothing but another thread can end the wait; if none has, the wait passes at once.
        if granted(shared) {
            Some(true)
        } else {
            if let Some(manual) = shared.clock.manual() {
                manual.advance(wait);
            }
            Some(false)
        }
    } else {
        block(shared, cancel, wait, &granted)
    };
    if outcome == Some(true) {
        return Ok(shared.stamp(shared.load().in_flight()));
    }
    // Timed out or cancelled: leave, unless a slot was granted just now.
    if shared.leave(ticket) {
        return Ok(shared.stamp(shared.load().in_flight()));
    }
    match outcome {
        None => Err(Error::Cancelled),
        _ if deadline_first => Err(shared.refuse(Refusal::Deadline).into()),
        _ => Err(shared.refuse(Refusal::QueueTimeout).into()),
    }
}

/// Blocks until granted (`Some(true)`), out of time (`Some(false)`) or cancelled (`None`).
#[cfg(not(loom))]
fn block(
    shared: &Shared,
    cancel: Option<&crate::CancellationToken>,
    wait: Duration,
    granted: &dyn Fn(&Shared) -> bool,
) -> Option<bool> {
    if let Some(token) = cancel {
        return token.wait_ready(wait, || granted(shared));
    }
    let start = std::time::Instant::now();
    loop {
        if granted(shared) {
            return Some(true);
        }
        match wait.checked_sub(start.elapsed()).filter(|d| !d.is_zero()) {
            Some(left) => std::thread::park_timeout(left),
            None => return Some(false),
        }
    }
}

#[cfg(loom)]
fn block(
    shared: &Shared,
    _cancel: Option<&crate::CancellationToken>,
    _wait: Duration,
    granted: &dyn Fn(&Shared) -> bool,
) -> Option<bool> {
    Some(granted(shared))
}

/// The right to run one call in a slot, from [`ConcurrencyLimit::try_acquire`] and kin.
/// Report the outcome with [`success`](Self::success), [`dropped`](Self::dropped),
/// [`ignore`](Self::ignore) or [`record`](Self::record): an adaptive limit learns from it.
///
/// It is a guard: dropped without an outcome (a cancelled future, a panic, a call refused by
/// another check after it took the slot), it frees its slot and gives no sample.
#[must_use = "a permit holds a slot until it is dropped or reported"]
pub struct Permit<'a> {
    shared: &'a Shared,
    raw: RawPermit,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(shared: &'a Shared, raw: RawPermit) -> Self {
        Self { shared, raw }
    }

    /// The call succeeded: a sample of the dependency's latency.
    #[inline]
    pub fn success(self) {
        self.finish(Outcome::Success);
    }

    /// The call was dropped: it timed out, or the dependency refused it as overloaded. An
    /// adaptive limit shrinks.
    #[inline]
    pub fn dropped(self) {
        self.finish(Outcome::Dropped);
    }

    /// The outcome says nothing about the dependency: no sample.
    #[inline]
    pub fn ignore(self) {
        self.finish(Outcome::Ignored);
    }

    /// Records a [`Class`]: a success or permanent failure is a sample, a transient failure a
    /// drop, an ignored outcome nothing.
    #[inline]
    pub fn record(self, class: Class) {
        self.finish(outcome_of(class));
    }

    #[inline]
    fn finish(self, outcome: Outcome) {
        let this = std::mem::ManuallyDrop::new(self);
        this.shared.complete(this.raw, outcome);
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.shared.complete(self.raw, Outcome::Ignored);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("inflight", &self.raw.inflight)
            .finish()
    }
}

/// A [`Permit`] that owns a handle to its limit, for `'static` futures and structures. The
/// same guard semantics.
#[must_use = "a permit holds a slot until it is dropped or reported"]
pub struct OwnedPermit {
    limit: Handle,
    raw: Option<RawPermit>,
}

/// How a `'static` holder reaches its limit: its own clone of the handle (a reference-count
/// increment and decrement), or a `&'static` one (nothing at all), as the breaker's.
#[derive(Clone, Debug)]
pub(crate) enum Handle {
    Shared(ConcurrencyLimit),
    #[cfg(feature = "tower")]
    Static(&'static ConcurrencyLimit),
}

impl Handle {
    #[inline]
    pub(crate) fn get(&self) -> &ConcurrencyLimit {
        match self {
            Self::Shared(limit) => limit,
            #[cfg(feature = "tower")]
            Self::Static(limit) => limit,
        }
    }

    /// [`ConcurrencyLimit::try_acquire_owned`] through this handle: no reference count for a
    /// `&'static` limit.
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn try_acquire(&self) -> Result<OwnedPermit, Refused> {
        let shared = &self.get().shared;
        match shared.try_take() {
            Some(inflight) => Ok(OwnedPermit::new(self.clone(), shared.stamp(inflight))),
            None => Err(shared.refuse(Refusal::LimitFull)),
        }
    }
}

impl OwnedPermit {
    #[inline]
    pub(crate) fn new(limit: Handle, raw: RawPermit) -> Self {
        Self {
            limit,
            raw: Some(raw),
        }
    }

    /// The call succeeded.
    #[inline]
    pub fn success(mut self) {
        self.finish(Outcome::Success);
    }

    /// The call was dropped (timed out, refused as overloaded).
    #[inline]
    pub fn dropped(mut self) {
        self.finish(Outcome::Dropped);
    }

    /// No sample.
    #[inline]
    pub fn ignore(mut self) {
        self.finish(Outcome::Ignored);
    }

    /// Records a [`Class`], as [`Permit::record`].
    #[inline]
    pub fn record(mut self, class: Class) {
        self.finish(outcome_of(class));
    }

    /// [`record`](Self::record) in place, for a future that keeps its permit until dropped:
    /// moving the permit out of the future first costs a store-forwarding stall per call.
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn record_in_place(&mut self, class: Class) {
        self.finish(outcome_of(class));
    }

    #[inline]
    fn finish(&mut self, outcome: Outcome) {
        if let Some(raw) = self.raw.take() {
            self.limit.get().shared.complete(raw, outcome);
        }
    }
}

impl Drop for OwnedPermit {
    #[inline]
    fn drop(&mut self) {
        self.finish(Outcome::Ignored);
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("held", &self.raw.is_some())
            .finish()
    }
}

/// What an adaptive limit learns from a [`Class`].
#[inline]
pub(crate) fn outcome_of(class: Class) -> Outcome {
    match class {
        Class::Success | Class::Permanent => Outcome::Success,
        Class::Ignored => Outcome::Ignored,
        _ => Outcome::Dropped,
    }
}
