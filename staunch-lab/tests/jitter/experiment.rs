//! The qualitative results the jitter experiment is known for, on a moderate number of runs so
//! that they stay fast in the dev profile. Everything is seeded, so these are not flaky: a
//! failure means the simulation (or the library's backoff) changed.

use staunch_lab::jitter::{self, Algorithm, Summary};

use crate::support::{clients, runs};

const SEED: u64 = 20;

#[test]
fn jittered_backoff_does_far_less_work_than_unjittered_exponential() {
    let results = jitter::experiment(&[clients(100)], runs(10), SEED);
    let get = |algorithm: Algorithm| -> Summary {
        *results.iter().find(|s| s.algorithm == algorithm).unwrap()
    };
    let exponential = get(Algorithm::Exponential);
    for algorithm in [Algorithm::Full, Algorithm::Equal, Algorithm::Decorrelated] {
        let jittered = get(algorithm);
        // Measured: full and equal about 0.43 of exponential's calls, decorrelated about 0.54.
        assert!(
            jittered.calls < 0.65 * exponential.calls,
            "{algorithm}: {jittered:?}\nexponential: {exponential:?}"
        );
        // Un-jittered clients stay in lockstep up to the cap, so they also finish much later
        // (about 60 s against 4 to 7 s).
        assert!(
            jittered.time_ms < exponential.time_ms / 4.0,
            "{algorithm}: {jittered:?}\nexponential: {exponential:?}"
        );
    }
}

#[test]
fn without_backoff_work_grows_like_n_squared() {
    let calls = |n: usize| jitter::summarize(clients(n), Algorithm::None, runs(20), SEED).calls;
    let sizes = [20, 40, 80];
    let work: Vec<f64> = sizes.iter().map(|&n| calls(n)).collect();

    // Doubling N multiplies the work by nearly 4: the growth exponent log2(ratio) measured
    // 1.56 to 1.65 from 20 to 40 and about 1.8 from 40 to 80 over seeds 0 to 7 (a linear term
    // weighs on small N), far from the 1 of linear growth and the 3 of cubic growth.
    for pair in work.windows(2) {
        let exponent = (pair[1] / pair[0]).log2();
        assert!(
            (1.5..=2.3).contains(&exponent),
            "exponent {exponent}: {work:?}"
        );
    }

    // Quadratic means the work per client grows linearly in N: calls = N(aN + b). Check that
    // the per-client slope is the same between 20 and 40 as between 40 and 80 (measured about
    // 0.2 calls per client per added client for both, within 13%, over seeds 0 to 7).
    let per_client: Vec<f64> = sizes
        .iter()
        .zip(&work)
        .map(|(&n, &w)| w / n as f64)
        .collect();
    let slope_low = (per_client[1] - per_client[0]) / 20.0;
    let slope_high = (per_client[2] - per_client[1]) / 40.0;
    assert!(slope_low > 0.1, "{per_client:?}");
    assert!(
        (slope_high / slope_low - 1.0).abs() < 0.25,
        "slopes {slope_low} and {slope_high}: {per_client:?}"
    );
}

#[test]
fn every_client_succeeds_exactly_once() {
    for n in [1, 2, 7, 40] {
        for algorithm in Algorithm::ALL {
            for seed in 0..4 {
                let outcome = jitter::run_once(clients(n), algorithm, seed);
                assert_eq!(outcome.accepted, n as u64, "{n} {algorithm} {seed}");
                assert!(
                    outcome.calls >= n as u64,
                    "{n} {algorithm} {seed}: {outcome:?}"
                );
                assert!(!outcome.time.is_zero());
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_results() {
    let sizes = [clients(5), clients(30)];
    let a = jitter::experiment(&sizes, runs(4), 77);
    let b = jitter::experiment(&sizes, runs(4), 77);
    assert_eq!(a, b);
    let c = jitter::experiment(&sizes, runs(4), 78);
    assert_ne!(a, c, "the seed should matter");
}

#[test]
fn a_row_does_not_depend_on_the_other_rows() {
    let alone = jitter::experiment(&[clients(30)], runs(3), SEED);
    let together = jitter::experiment(&[clients(5), clients(30)], runs(3), SEED);
    assert_eq!(alone[..], together[Algorithm::ALL.len()..]);
}

#[test]
fn results_come_in_client_then_algorithm_order() {
    let results = jitter::experiment(&[clients(3), clients(4)], runs(1), SEED);
    let order: Vec<(usize, &str)> = results
        .iter()
        .map(|s| (s.clients, s.algorithm.name()))
        .collect();
    let expected: Vec<(usize, &str)> = [3, 4]
        .into_iter()
        .flat_map(|n| Algorithm::ALL.map(|a| (n, a.name())))
        .collect();
    assert_eq!(order, expected);
}
