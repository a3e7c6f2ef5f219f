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
        "overload",
        "checkout",
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
        assert!(value["notes"].is_array(), "{file}");
        let verdict = policies[0]["verdict"].as_str().expect("a verdict");
        assert!(verdict.contains("answered"), "{file}: {verdict}");
        assert!(
            table.starts_with(verdict),
            "{file}: the table starts with the verdict"
        );
        let counts: u64 = ["success", "fallback", "failed", "unfinished"]
            .iter()
            .map(|k| overall["counts"][k].as_u64().expect("a count"))
            .sum();
        assert_eq!(counts, requests, "{file}");
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

/// The `staunch-lab` arguments of every `cargo run --release -p staunch-lab -- simulate ...` line
/// in `text`.
fn commands(text: &str) -> Vec<Vec<String>> {
    const RUN: &str = "cargo run --release -p staunch-lab -- ";
    text.lines()
        .filter_map(|line| line.split_once(RUN))
        .map(|(_, args)| {
            args.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|args| args.first().is_some_and(|a| a == "simulate"))
        .collect()
}

#[test]
fn every_command_in_the_scenarios_and_the_readme_runs_from_the_repository_root() {
    use clap::Parser;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let mut all = Vec::new();
    for file in all_scenarios() {
        let text = std::fs::read_to_string(&file).unwrap();
        let found = commands(&text);
        assert!(
            !found.is_empty(),
            "{}: no command in its comments",
            file.display()
        );
        all.extend(found);
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let from_readme = commands(&readme);
    assert!(!from_readme.is_empty(), "no simulate command in the README");
    all.extend(from_readme);
    all.sort();
    all.dedup();
    for args in all {
        let parsed = staunch_lab::cli::Cli::try_parse_from(
            std::iter::once("staunch-lab").chain(args.iter().map(String::as_str)),
        );
        assert!(parsed.is_ok(), "{args:?}: {}", parsed.unwrap_err());
        // As written, from the root, within the default ceilings: every run is bounded.
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_staunch-lab"))
            .args(&args)
            .current_dir(root)
            .output()
            .expect("the staunch-lab binary runs");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("answered"));
    }
}
