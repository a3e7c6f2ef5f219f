//! What the policies do, through the library API: the directions the scenarios are there to
//! show, checked on shortened runs.

use std::path::Path;

use staunch_lab::simulate::{self, Policy, Scenario, report::Report};

use crate::support::scenario;

fn run(stem: &str, seed: u64) -> Report {
    let scenario = Scenario::from_file(Path::new(&scenario(stem))).expect("a valid scenario");
    let naive = Policy::from_file(Path::new(&crate::support::scenario("naive"))).expect("naive");
    simulate::simulate(&scenario, &[scenario.policy.clone(), naive], seed).expect("runs")
}

fn phase(report: &Report, name: &str) -> usize {
    report
        .segments
        .iter()
        .position(|s| s.name == name)
        .unwrap_or_else(|| panic!("no phase {name}"))
}

#[test]
fn a_hard_outage_opens_the_breaker_and_spares_the_dependency() {
    let report = run("hard-outage", 1);
    // Nobody could have had the dependency's answers during the outage: no trade to report.
    assert!(report.notes().is_empty(), "{:?}", report.notes());
    let (staunch, naive) = (&report.policies[0], &report.policies[1]);
    let outage = phase(&report, "outage");
    let incident = staunch.incidents[outage].expect("the outage is an incident");
    let detected = incident
        .detected
        .expect("the breaker opens during the outage");
    assert!(detected.as_secs_f64() < 1.0, "detected after {detected:?}");
    assert!(incident.first_success.is_some());
    let (s, n) = (staunch.segments[outage], naive.segments[outage]);
    assert!(s.calls_per_request().unwrap() < 0.2, "{s:?}");
    assert!(n.calls_per_request().unwrap() > 4.0, "{n:?}");
    assert!(s.fallback * 100 > s.requests * 95, "{s:?}");
    assert!(s.p99 < n.p99, "{s:?} {n:?}");
}

#[test]
fn a_herd_keeps_the_naive_policy_down_but_not_the_budgeted_one() {
    let report = run("thundering-herd", 2);
    let (staunch, naive) = (&report.policies[0], &report.policies[1]);
    let recovery = phase(&report, "recovery");
    let (s, n) = (staunch.segments[recovery], naive.segments[recovery]);
    assert!(s.success * 10 > s.requests * 8, "staunch recovers: {s:?}");
    assert!(n.success * 2 < n.requests, "naive stays down: {n:?}");
    assert!(n.calls_per_request().unwrap() > 2.0 * s.calls_per_request().unwrap());
}

#[test]
fn a_brownout_is_bounded_by_the_caps() {
    let report = run("brownout", 3);
    let (staunch, naive) = (&report.policies[0], &report.policies[1]);
    let brownout = phase(&report, "brownout");
    let (s, n) = (staunch.segments[brownout], naive.segments[brownout]);
    // The request deadline is 1 s: nothing waits longer.
    assert!(s.max.unwrap().as_secs_f64() <= 1.0, "{s:?}");
    assert!(n.p99.unwrap().as_secs_f64() > 1.0, "{n:?}");
    // ... and the report says so, from those numbers.
    let notes = report.notes();
    assert!(
        notes.iter().any(|n| n.starts_with("In brownout")
            && n.contains("staunch answered")
            && n.contains("from its fallback rather than wait")
            && n.contains("for naive")),
        "{notes:?}"
    );
}

#[test]
fn rare_failures_are_retried_cheaply_and_do_not_trip() {
    let report = run("flaky", 4);
    let staunch = &report.policies[0];
    let all = staunch.overall;
    assert!(all.success * 1000 >= all.requests * 999, "{all:?}");
    let amplification = all.calls_per_request().unwrap();
    assert!((1.03..1.08).contains(&amplification), "{amplification}");
    assert!(staunch.transitions.is_empty(), "{:?}", staunch.transitions);
}
