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

#[test]
fn hedging_cuts_the_long_tail_for_a_percent_more_calls() {
    let scenario = Scenario::from_file(Path::new(&scenario("tail"))).expect("a valid scenario");
    let retry =
        Policy::from_file(Path::new(&crate::support::scenario("tail-retry"))).expect("retry");
    let report = simulate::simulate(&scenario, &[scenario.policy.clone(), retry], 5).expect("runs");
    let (hedge, retry) = (report.policies[0].overall, report.policies[1].overall);
    let ms = |d: Option<std::time::Duration>| d.expect("latencies").as_secs_f64() * 1000.0;
    // A slow call is answered by its hedge, sent after 20 ms: about 30 ms. Retry must wait
    // out its 100 ms attempt timeout first.
    assert!(ms(hedge.p999) < 40.0, "{hedge:?}");
    assert!(ms(retry.p999) > 100.0, "{retry:?}");
    assert!(ms(hedge.p50) < 15.0 && ms(hedge.p99) < 20.0, "{hedge:?}");
    let hedges = hedge.hedges_per_request().unwrap();
    assert!((0.005..0.02).contains(&hedges), "{hedges}");
    assert!(hedge.calls_per_request().unwrap() < 1.02, "{hedge:?}");
    assert_eq!(retry.hedges_per_request(), Some(0.0));
    assert_eq!(hedge.success, hedge.requests);
}

#[test]
fn an_overload_recovers_behind_a_limit_and_throttling_but_not_without() {
    let report = run("overload", 3);
    let (staunch, naive) = (&report.policies[0], &report.policies[1]);
    let busy = phase(&report, "busy");
    let after = phase(&report, "after");
    let (s, n) = (staunch.segments[busy], naive.segments[busy]);
    // While busy, the limit and the throttle refuse locally: fewer calls than requests.
    assert!(s.calls_per_request().unwrap() < 1.0, "{s:?}");
    assert!(n.calls_per_request().unwrap() > 3.0, "{n:?}");
    assert!(s.p99 < n.p99, "{s:?} {n:?}");
    // After it, the dependency is as fast as before: staunch recovers, naive stays down.
    let (s, n) = (staunch.segments[after], naive.segments[after]);
    assert!(s.success * 10 > s.requests * 9, "staunch recovers: {s:?}");
    assert!(n.success * 2 < n.requests, "naive stays down: {n:?}");
    let refused = staunch
        .stop_reasons
        .iter()
        .filter(|(reason, _, _)| matches!(reason, staunch::StopReason::Refused(_)))
        .map(|&(_, fallback, failed)| fallback + failed)
        .sum::<usize>();
    assert!(refused > 0, "{:?}", staunch.stop_reasons);
}

#[test]
fn a_checkout_calls_pricing_then_inventory_each_behind_its_own_policy() {
    let report = run("checkout", 6);
    let (staunch, naive) = (&report.policies[0], &report.policies[1]);
    let names: Vec<&str> = staunch
        .dependencies
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["pricing", "inventory"]);
    let slow = phase(&report, "pricing slow");
    // Pricing capped at 500 ms per attempt, its fallback answering: the request stays fast,
    // and inventory is still called (a fallback does not end the sequence).
    let (s, n) = (staunch.segments[slow], naive.segments[slow]);
    assert!(s.p99.unwrap().as_secs_f64() < 0.7, "{s:?}");
    assert!(n.p99.unwrap().as_secs_f64() > 2.0, "{n:?}");
    assert_eq!(s.failed, 0, "{s:?}");
    let (pricing, inventory) = (
        staunch.dependencies[0].segments[slow],
        staunch.dependencies[1].segments[slow],
    );
    assert!(pricing.fallback * 10 > pricing.requests * 9, "{pricing:?}");
    assert_eq!(
        inventory.requests, s.requests,
        "every request reached inventory"
    );
    // While pricing is down, naive's requests fail at pricing and never call inventory.
    let down = phase(&report, "pricing down");
    let naive_inventory = naive.dependencies[1].segments[down];
    let naive_down = naive.segments[down];
    assert!(
        naive_inventory.requests < naive_down.requests / 10,
        "{naive_inventory:?}"
    );
    // Inventory has no fallback: its failures are the request's.
    let flaky = phase(&report, "inventory flaky");
    let (request, inventory) = (
        staunch.segments[flaky],
        staunch.dependencies[1].segments[flaky],
    );
    assert_eq!(request.failed, inventory.failed);
    assert_eq!(inventory.fallback, 0);
}
