//! [`Chaos`]: the policy, its closure API and its decisions.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::call::{Boxed, Injected};
use super::config::{ChaosConfig, Inject, NoInjection};
use super::switch::{ChaosSwitch, Shared};
use super::{Call, Injection, events};
use crate::ConfigError;
use crate::loom::Arc;

/// A fault-injection policy: with the configured probabilities, replaces a call with an error,
/// delays it, or replaces it with a substitute result. See the [module docs](super).
///
/// Build it once per dependency and share it: it is `Clone` when its makers are, and every
/// clone shares one [`ChaosSwitch`] and one random sequence.
///
/// # Examples
///
/// ```
/// use staunch::chaos::{Chaos, ChaosConfig};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), staunch::ConfigError> {
/// let chaos = Chaos::new(
///     ChaosConfig::new().with_error(1.0, || std::io::Error::other("injected")),
/// )?;
/// let err = chaos.call(|| async { Ok(12.50) }).await.unwrap_err();
/// assert_eq!(err.to_string(), "injected");
///
/// chaos.switch().disable();
/// assert_eq!(chaos.call(|| async { Ok::<_, std::io::Error>(12.50) }).await.unwrap(), 12.50);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Chaos<E = NoInjection, R = NoInjection> {
    shared: Arc<Shared>,
    error: E,
    result: R,
}

impl<E, R> Chaos<E, R> {
    /// A policy from `config`, on or off as the config says.
    ///
    /// # Errors
    ///
    /// The configuration is invalid; see [`ChaosConfig::validate`].
    pub fn new(config: ChaosConfig<E, R>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            shared: Arc::new(Shared::new(&config)),
            error: config.error,
            result: config.result,
        })
    }

    /// The switch that turns this policy (and every clone of it) on and off at run time.
    pub fn switch(&self) -> ChaosSwitch {
        ChaosSwitch {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Whether the policy injects (one atomic load).
    pub fn is_enabled(&self) -> bool {
        self.shared.is_enabled()
    }

    /// Draws the next call's injection: [`Injection::None`] while the policy is off (one atomic
    /// load, no draw). For a shell of your own; [`call`](Self::call) draws and applies.
    ///
    /// The `n`-th call that draws (counting from 0, over every clone) draws what
    /// [`decide_keyed(n)`](Self::decide_keyed) does.
    #[inline]
    pub fn decide(&self) -> Injection {
        self.shared.decide()
    }

    /// Draws the injection of the call named `key`, from a generator of its own seeded with the
    /// policy's seed and `key`: the same key always draws the same injection (while the rates
    /// stay the same), whatever the order in which calls arrive. For simulations whose calls
    /// run concurrently, where the order of unkeyed draws would differ from run to run: key each
    /// call with what identifies it (a request number and an attempt, say). Does not advance
    /// the sequence of [`decide`](Self::decide).
    #[inline]
    pub fn decide_keyed(&self, key: u64) -> Injection {
        self.shared.decide_keyed(key)
    }

    /// Carries out `injection` on the operation `op`: calls `op` at once unless the injection
    /// replaces it, and returns a future that waits out the injected delay before it polls the
    /// operation's future (or returns the injected error or substitute).
    ///
    /// An operation's future does nothing until it is polled, so the dependency sees the call
    /// only after the delay. An injection whose maker makes nothing ([`NoInjection`]) leaves
    /// the call alone. Reports each injection (see the [module docs](super#telemetry)).
    #[inline]
    pub fn apply<Op, Fut, T, Er>(&self, injection: Injection, op: Op) -> Call<Fut>
    where
        Op: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Er>>,
        E: Inject<Er>,
        R: Inject<T>,
    {
        let (injected, replaced) = match injection {
            Injection::None => (None, false),
            injection => self.inject(injection),
        };
        Call::new(injected, replaced, op)
    }

    /// Runs `op` through the policy: draws the injection when called (not when first polled,
    /// like a tower service's `call`) and [applies](Self::apply) it.
    ///
    /// While the policy is off this costs one atomic load: no draw, no allocation.
    #[inline]
    pub fn call<Op, Fut, T, Er>(&self, op: Op) -> Call<Fut>
    where
        Op: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Er>>,
        E: Inject<Er>,
        R: Inject<T>,
    {
        // Off: one load and a branch. Whether on or off, the future is built in one place below,
        // from what the branch leaves in registers.
        let (injected, replaced) = if self.shared.is_enabled() {
            self.inject(self.shared.decide_enabled(None))
        } else {
            (None, false)
        };
        Call::new(injected, replaced, op)
    }

    /// What `injection` puts before the call, and whether it replaces the call.
    #[inline(never)]
    fn inject<T, Er>(&self, injection: Injection) -> (Boxed<Result<T, Er>>, bool)
    where
        E: Inject<Er>,
        R: Inject<T>,
    {
        let delay = injection.delay().unwrap_or(Duration::ZERO);
        let (done, outcome) = match injection {
            Injection::Error => match self.error.inject() {
                Some(error) => (injection, Some(Err(error))),
                None => (Injection::None, None),
            },
            Injection::Result | Injection::DelayedResult(_) => match self.result.inject() {
                Some(result) => (injection, Some(Ok(result))),
                None if delay.is_zero() => (Injection::None, None),
                None => (Injection::Delay(delay), None),
            },
            _ => (injection, None),
        };
        if done.is_injected() {
            events::injected(self.shared.name(), done);
        }
        let replaced = outcome.is_some();
        (
            Injected::new(done.delay().unwrap_or(Duration::ZERO), outcome),
            replaced,
        )
    }
}

impl<E, R> fmt::Debug for Chaos<E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.shared, f)
    }
}
