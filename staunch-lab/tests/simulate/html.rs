//! `--html`: a self-contained report whose charts a real browser renders.
//!
//! The browser check runs headless Chromium on the report and reads back the DOM it built. Where
//! Chromium is absent it is skipped with a message, except in CI (`CI=true`), which installs it
//! (`.ci/run`) and where its absence is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use staunch_lab::simulate::CHARTS;

use crate::support::{scenario, staunch_lab, temp_dir};

fn write_report(dir: &Path) -> (PathBuf, String) {
    let file = dir.join("report.html");
    let output = staunch_lab(&[
        "simulate",
        &scenario("brownout"),
        "--compare",
        &scenario("naive"),
        "--html",
        &file.to_string_lossy(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let html = std::fs::read_to_string(&file).expect("the report was written");
    (file, html)
}

#[test]
fn the_report_is_self_contained_and_has_every_chart() {
    let dir = temp_dir("html");
    let (_, html) = write_report(&dir);
    assert!(html.starts_with("<!doctype html>"));
    for id in CHARTS {
        assert!(
            html.contains(&format!("<div id=\"{id}\"><svg")),
            "no {id} chart"
        );
    }
    // Both policies, in the verdicts and in the charts.
    assert!(html.contains("staunch: 100.0% answered") && html.contains("naive: "));
    assert!(html.contains("from its fallback rather than wait"));
    for external in ["<script", "http://", "https://", "<link", "url("] {
        assert!(
            !html.contains(external),
            "{external} in a self-contained report"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_html_path_fails_before_the_run() {
    let output = staunch_lab(&[
        "simulate",
        &scenario("flaky"),
        "--html",
        "/nonexistent/dir/report.html",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot create /nonexistent/dir/report.html"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

/// Chromium's command, if it is installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

#[test]
fn a_headless_browser_renders_every_chart() {
    let Some(browser) = chromium() else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must install chromium (.ci/run does) to check the HTML report in a browser"
        );
        eprintln!(
            "SKIPPED a_headless_browser_renders_every_chart: no chromium on PATH \
             (apt-get install chromium to run it)"
        );
        return;
    };
    let dir = temp_dir("browser");
    let (file, _) = write_report(&dir);
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    // A guard against a browser that hangs, not a measurement: the check is on the DOM.
    let give_up = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("chromium runs").is_none() {
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("chromium did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("chromium's output");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "chromium failed: {dom}");
    // The browser parsed each chart into an SVG element with its drawing inside.
    for id in CHARTS {
        let start = dom
            .find(&format!("<div id=\"{id}\"><svg"))
            .unwrap_or_else(|| panic!("no {id} chart in the rendered DOM"));
        let chart = &dom[start..];
        let chart = &chart[..chart.find("</svg>").expect("the chart's SVG is closed")];
        let marks = chart.matches("<polyline").count() + chart.matches("<rect").count();
        assert!(marks >= 2, "{id}: {marks} marks in\n{chart}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fleet_with_several_dependencies_gets_a_breaker_strip_per_dependency() {
    let dir = temp_dir("html-fleet");
    let file = dir.join("fleet.html");
    let output = staunch_lab(&[
        "simulate",
        &scenario("checkout"),
        "--clients",
        "3",
        "--html",
        &file.to_string_lossy(),
    ]);
    assert!(output.status.success());
    let html = std::fs::read_to_string(&file).unwrap();
    // Only pricing has a breaker; the strip is client 0's, and the fleet's measures are there.
    assert!(html.contains(">staunch pricing</text>"), "no pricing strip");
    assert!(!html.contains(">staunch inventory</text>"));
    assert!(html.contains("client 0 of the fleet's 3"));
    assert!(html.contains("A fleet of 3 clients") && html.contains("of clients open at once"));
    let _ = std::fs::remove_dir_all(&dir);
}
