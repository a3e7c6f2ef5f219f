//! Integration tests of `staunch-lab jitter`: the known results of the experiment, and the
//! command line.

mod cli;
mod experiment;
mod support;
