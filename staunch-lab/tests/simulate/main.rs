//! Integration tests of `staunch-lab simulate`: the shipped scenarios, determinism, what the
//! policies do to an outage, and bad input files.

mod errors;
mod fleet;
mod fuzz;
mod html;
mod limits;
mod outcomes;
mod per_dependency;
mod scenarios;
mod support;
