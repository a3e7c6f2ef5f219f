//! Deadlines: how much time the caller has left, visible to every nested call.
//!
//! A [`Deadline`] is an absolute monotonic instant. It can be passed explicitly, or put in scope
//! for a future ([`Deadline::scope`]) or a closure ([`Deadline::scope_sync`]) so that nested code
//! finds it with [`Deadline::current`] without plumbing. Nested scopes never extend an outer
//! deadline: the tighter one wins.
//!
//! Retry reads the deadline in scope: it never sleeps past it, never starts an attempt with no
//! time left, and stops with [`StopReason::Deadline`](crate::StopReason::Deadline).
//!
//! The scope travels with the future, not the thread: it is set while the future is being
//! polled, on whichever thread polls it. A task spawned inside a scope does not inherit it; wrap
//! the spawned future in its own scope (`Deadline::current()` gives the one to pass on).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use staunch::Deadline;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let outer = Deadline::after(Duration::from_secs(5));
//! outer
//!     .scope(async {
//!         assert_eq!(Deadline::current(), Some(outer));
//!         // A looser inner deadline does not extend the caller's.
//!         Deadline::after(Duration::from_secs(60))
//!             .scope(async { assert_eq!(Deadline::current(), Some(outer)) })
//!             .await;
//!     })
//!     .await;
//! assert_eq!(Deadline::current(), None);
//! # }
//! ```

#[cfg(feature = "tower")]
mod layer;
mod scope;
mod timeout;

#[cfg(feature = "tower")]
pub use layer::{
    AttemptTimeoutLayer, AttemptTimeoutService, DeadlineLayer, DeadlineService, TimeoutFuture,
};
#[cfg(feature = "tower")]
pub(crate) use scope::Enter;
pub use scope::{Deadline, Scoped};
pub use timeout::{AttemptTimeout, Elapsed};
