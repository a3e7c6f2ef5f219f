//! One classification of outcomes, shared by retry, the circuit breaker and fallback.
//!
//! Every policy asks the same question of a finished call: what was this? A [`Classify`]
//! implementation answers with a [`Class`]:
//!
//! | class | retry | circuit breaker |
//! |---|---|---|
//! | [`Success`](Class::Success) | done, return it | success |
//! | [`Ignored`](Class::Ignored) | not retried, returned as is | counts as nothing |
//! | [`Permanent`](Class::Permanent) | not retried (4xx-like) | failure |
//! | [`Transient`](Class::Transient) | retried (5xx-like) | failure |
//! | [`RetryAfter(d)`](Class::RetryAfter) | retried no sooner than `d` | failure |
//!
//! Any `Fn(&Result<T, E>) -> Class` is a classifier, so most users write a closure. A success can
//! be classified as a failure (an HTTP 503 that arrived as `Ok(response)`), and an error can be
//! ignored (a cancelled request says nothing about the dependency's health).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use staunch::classify::{Class, Classify};
//!
//! #[derive(Debug)]
//! enum DbError { Deadlock, Busy { retry_in: Duration }, BadQuery }
//!
//! let classify = |result: &Result<u32, DbError>| match result {
//!     Ok(_) => Class::Success,
//!     Err(DbError::Deadlock) => Class::Transient,
//!     Err(DbError::Busy { retry_in }) => Class::RetryAfter(*retry_in),
//!     Err(DbError::BadQuery) => Class::Permanent,
//! };
//! assert_eq!(classify.classify(&Err(DbError::BadQuery)), Class::Permanent);
//! assert!(classify.classify(&Err(DbError::Deadlock)).is_retriable());
//! ```

use std::fmt;
use std::time::Duration;

/// What a finished call was. See the [module docs](self) for what each policy does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Class {
    /// The call succeeded.
    Success,
    /// The outcome says nothing about the dependency: not retried, not counted by a breaker.
    Ignored,
    /// A failure that trying again will not fix (a 4xx-like error).
    Permanent,
    /// A failure that may go away (a 5xx-like error, a timeout, a reset connection).
    Transient,
    /// A transient failure whose source said when to try again (a `Retry-After` hint).
    RetryAfter(Duration),
}

impl Class {
    /// Whether this outcome is a failure (counts against a breaker).
    #[inline]
    pub const fn is_failure(self) -> bool {
        matches!(
            self,
            Self::Permanent | Self::Transient | Self::RetryAfter(_)
        )
    }

    /// Whether retrying may help.
    #[inline]
    pub const fn is_retriable(self) -> bool {
        matches!(self, Self::Transient | Self::RetryAfter(_))
    }

    /// The server's hint, if any.
    #[inline]
    pub const fn retry_after(self) -> Option<Duration> {
        match self {
            Self::RetryAfter(hint) => Some(hint),
            _ => None,
        }
    }
}

/// Classifies the outcome of a call.
///
/// Implemented for every `Fn(&Result<T, E>) -> Class`; see [`AllTransient`] and [`RetryIf`] for
/// the common cases.
pub trait Classify<T, E> {
    /// The class of `result`.
    fn classify(&self, result: &Result<T, E>) -> Class;
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Class,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Class {
        self(result)
    }
}

/// The default classifier: `Ok` is a success and every `Err` is transient.
///
/// # Examples
///
/// ```
/// use staunch::classify::{AllTransient, Class, Classify};
///
/// assert_eq!(AllTransient.classify(&Ok::<_, ()>(1)), Class::Success);
/// assert_eq!(AllTransient.classify(&Err::<(), _>("io")), Class::Transient);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllTransient;

impl<T, E> Classify<T, E> for AllTransient {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Class {
        match result {
            Ok(_) => Class::Success,
            Err(_) => Class::Transient,
        }
    }
}

/// Classifies errors with a predicate: `true` is transient, `false` permanent; `Ok` is a
/// success. Made by `Retry::retry_if` and usable on its own.
///
/// # Examples
///
/// ```
/// use staunch::classify::{Class, Classify, RetryIf};
///
/// let c = RetryIf::new(|e: &std::io::Error| e.kind() == std::io::ErrorKind::TimedOut);
/// let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
/// assert_eq!(c.classify(&Err::<(), _>(timed_out)), Class::Transient);
/// ```
#[derive(Clone, Copy)]
pub struct RetryIf<F> {
    predicate: F,
}

impl<F> RetryIf<F> {
    /// Classifies errors for which `predicate` returns `true` as transient, the rest permanent.
    pub const fn new(predicate: F) -> Self {
        Self { predicate }
    }
}

impl<T, E, F> Classify<T, E> for RetryIf<F>
where
    F: Fn(&E) -> bool,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Class {
        match result {
            Ok(_) => Class::Success,
            Err(e) if (self.predicate)(e) => Class::Transient,
            Err(_) => Class::Permanent,
        }
    }
}

impl<F> fmt::Debug for RetryIf<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryIf").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_predicates() {
        let hint = Duration::from_secs(2);
        let table = [
            (Class::Success, false, false, None),
            (Class::Ignored, false, false, None),
            (Class::Permanent, true, false, None),
            (Class::Transient, true, true, None),
            (Class::RetryAfter(hint), true, true, Some(hint)),
        ];
        for (class, failure, retriable, after) in table {
            assert_eq!(class.is_failure(), failure, "{class:?}");
            assert_eq!(class.is_retriable(), retriable, "{class:?}");
            assert_eq!(class.retry_after(), after, "{class:?}");
        }
    }

    #[test]
    fn closures_and_predicates_classify() {
        let by_closure = |r: &Result<u8, u8>| match r {
            Ok(0) => Class::Transient, // a success that is really a failure
            Ok(_) => Class::Success,
            Err(_) => Class::Ignored,
        };
        assert_eq!(by_closure.classify(&Ok(0)), Class::Transient);
        assert_eq!(by_closure.classify(&Err(1)), Class::Ignored);

        let even_is_transient = RetryIf::new(|e: &u8| e.is_multiple_of(2));
        assert_eq!(
            even_is_transient.classify(&Err::<(), _>(2)),
            Class::Transient
        );
        assert_eq!(
            even_is_transient.classify(&Err::<(), _>(3)),
            Class::Permanent
        );
        assert_eq!(even_is_transient.classify(&Ok::<_, u8>(())), Class::Success);
    }
}
