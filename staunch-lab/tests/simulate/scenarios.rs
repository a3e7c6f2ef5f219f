//! Every shipped scenario runs as-is, in both formats, and the same seed prints the same bytes.

use crate::support::{all_scenarios, scenario, staunch_lab, stdout_of};

#[test]
fn the_documented_scenarios_are_shipped() {
    let stems: Vec<String> = all_scenarios()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "brownout",
        "flaky",
        "hard-outage",
        "thundering-herd",
        "naive",
        "tail",
        "tail-retry",
    ] {
        assert!(
            stems.iter().any(|s| s == expected),
            "{expected} in {stems:?}"
        );
    }
}

#[test]
fn every_shipped_scenario_runs_as_is() {
    let naive = scenario("naive");
    for file in all_scenarios() {
        let file = file.to_string_lossy();
        let table = stdout_of(&["simulate", &file, "--compare", &naive]);
        for needle in [
            "Scenario: ",
            "success",
            "latency p99",
            "latency p99.9",
            "calls per request",
            "hedges per request",
        ] {
            assert!(table.contains(needle), "{file}: no {needle:?} in\n{table}");
        }
        let json = stdout_of(&["simulate", &file, "--format", "json"]);
        let value: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{file}: {e}\n{json}"));
        let policies = value["policies"].as_array().expect("policies");
        assert_eq!(policies.len(), 1, "{file}");
        let requests = value["requests"].as_u64().expect("requests");
        assert!(requests > 0, "{file}");
        let overall = &policies[0]["overall"];
        for key in [
            "p50_ms",
            "p99_ms",
            "p999_ms",
            "max_ms",
            "calls_per_request",
            "hedges_per_request",
        ] {
            assert!(overall[key].is_number(), "{file}: {key} in {overall}");
        }
        let shares: f64 = ["success", "fallback", "failed", "unfinished"]
            .iter()
            .map(|k| overall[k].as_f64().expect("a share"))
            .sum();
        assert!(
            (shares - 1.0).abs() < 1e-5,
            "{file}: shares add up to {shares}"
        );
        let per_phase: u64 = policies[0]["phases"]
            .as_array()
            .expect("phases")
            .iter()
            .map(|p| p["stats"]["requests"].as_u64().expect("requests"))
            .sum();
        assert_eq!(per_phase, requests, "{file}: every request in one phase");
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_numbers() {
    let file = scenario("thundering-herd");
    let naive = scenario("naive");
    for format in ["table", "json"] {
        let args = [
            "simulate",
            &file,
            "--compare",
            &naive,
            "--seed",
            "7",
            "--format",
            format,
        ];
        let first = staunch_lab(&args);
        let second = staunch_lab(&args);
        assert!(
            first.status.success(),
            "{}",
            String::from_utf8_lossy(&first.stderr)
        );
        assert_eq!(first.stdout, second.stdout, "{format}: two runs differ");
        let other = staunch_lab(&[
            "simulate",
            &file,
            "--compare",
            &naive,
            "--seed",
            "8",
            "--format",
            format,
        ]);
        assert_ne!(
            first.stdout, other.stdout,
            "{format}: the seed changes nothing"
        );
    }
}

#[test]
fn the_default_seed_is_printed_and_reproducible() {
    let file = scenario("flaky");
    let a = stdout_of(&["simulate", &file]);
    let b = stdout_of(&["simulate", &file, "--seed", "2015"]);
    assert!(a.contains("seed 2015"), "{a}");
    assert_eq!(a, b);
}

#[test]
fn help_documents_every_flag_and_the_exit_codes() {
    let help = stdout_of(&["simulate", "--help"]);
    for needle in [
        "--compare",
        "--seed",
        "--format",
        "SCENARIO.toml",
        "Exit codes",
        "virtual time",
    ] {
        assert!(help.contains(needle), "no {needle:?} in\n{help}");
    }
}
