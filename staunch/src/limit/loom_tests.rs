//! loom models of the concurrency limit's word and queue. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p staunch --lib --release --no-default-features -- loom_`.

use loom::thread;

use super::shared::{Joined, Shared, Wake};
use super::{Aimd, LimitConfig};
use crate::Clock;
use crate::loom::Arc;

fn shared(config: LimitConfig) -> Arc<Shared> {
    Arc::new(Shared::new(config, Clock::system(), "loom"))
}

fn assert_all_free(shared: &Shared) {
    let word = shared.load();
    assert_eq!((word.in_flight(), word.queued()), (0, 0), "a slot leaked");
}

#[test]
fn loom_release_racing_a_join_never_loses_the_slot() {
    loom::model(|| {
        let shared = shared(LimitConfig::fixed(1).with_max_queue(1));
        let held = shared.try_take().expect("the only slot");
        assert_eq!(held, 1);
        let releaser = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || shared.release())
        };
        // A caller that finds the slot taken joins the queue, racing the release.
        let got = match shared.try_take() {
            Some(_) => true,
            None => match shared.join(Wake::None).expect("room in the queue") {
                Joined::Acquired(_) => true,
                Joined::Queued(ticket) => {
                    releaser.join().unwrap();
                    // The release came after the join: it must have handed the slot over.
                    assert_eq!(shared.poll_ticket(ticket, None), Some(true), "lost wakeup");
                    shared.release();
                    assert_all_free(&shared);
                    return;
                }
            },
        };
        assert!(got);
        shared.release();
        releaser.join().unwrap();
        assert_all_free(&shared);
    });
}

#[test]
fn loom_a_waiter_leaving_while_granted_returns_the_slot() {
    loom::model(|| {
        let shared = shared(LimitConfig::fixed(1).with_max_queue(1));
        shared.try_take().unwrap();
        let Ok(Joined::Queued(ticket)) = shared.join(Wake::None) else {
            panic!("queued behind the holder");
        };
        let releaser = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || shared.release())
        };
        // The waiter times out, racing the hand-over.
        if shared.leave(ticket) {
            shared.release(); // granted just before: it held the slot
        }
        releaser.join().unwrap();
        assert_all_free(&shared);
    });
}

#[test]
fn loom_waiters_are_served_in_order() {
    loom::model(|| {
        let shared = shared(LimitConfig::fixed(1).with_max_queue(2));
        shared.try_take().unwrap();
        let Ok(Joined::Queued(first)) = shared.join(Wake::None) else {
            panic!("queued");
        };
        let Ok(Joined::Queued(second)) = shared.join(Wake::None) else {
            panic!("queued");
        };
        let releaser = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || shared.release())
        };
        // The second waiter gives up, racing the release: never granted before the first.
        let second_granted = shared.leave(second);
        releaser.join().unwrap();
        assert!(!second_granted, "the second waiter overtook the first");
        assert_eq!(shared.poll_ticket(first, None), Some(true));
        shared.release();
        assert_all_free(&shared);
    });
}

#[test]
fn loom_two_holders_releasing_with_waiters_hand_over_both_slots() {
    loom::model(|| {
        let shared = shared(LimitConfig::fixed(2).with_max_queue(2));
        shared.try_take().unwrap();
        shared.try_take().unwrap();
        let tickets = [0, 1].map(|_| match shared.join(Wake::None) {
            Ok(Joined::Queued(ticket)) => ticket,
            _ => panic!("queued"),
        });
        let releasers: Vec<_> = (0..2)
            .map(|_| {
                let shared = Arc::clone(&shared);
                thread::spawn(move || shared.release())
            })
            .collect();
        for releaser in releasers {
            releaser.join().unwrap();
        }
        for ticket in tickets {
            assert_eq!(shared.poll_ticket(ticket, None), Some(true));
            shared.release();
        }
        assert_all_free(&shared);
    });
}

#[test]
fn loom_an_adaptive_limit_moving_never_strands_a_waiter() {
    loom::model(|| {
        // AIMD from 1: a success with the limit in use grows it to 2, which admits the waiter
        // while the holder still holds its slot.
        let shared = shared(
            LimitConfig::aimd(
                Aimd::new()
                    .with_initial_limit(1)
                    .with_min_limit(1)
                    .with_max_limit(2),
            )
            .with_max_queue(1),
        );
        let inflight = shared.try_take().unwrap();
        let raw = shared.stamp(inflight);
        let finisher = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || shared.complete(raw, super::shared::Outcome::Success))
        };
        match shared.try_take() {
            Some(_) => shared.release(),
            None => match shared.join(Wake::None).unwrap() {
                Joined::Acquired(_) => shared.release(),
                Joined::Queued(ticket) => {
                    finisher.join().unwrap();
                    assert_eq!(shared.poll_ticket(ticket, None), Some(true), "stranded");
                    shared.release();
                    assert_all_free(&shared);
                    return;
                }
            },
        }
        finisher.join().unwrap();
        assert_all_free(&shared);
    });
}
