//! Integration tests of `staunch-lab demo`: a shortened run over loopback HTTP checks the
//! direction of every claim, and the command line checks its inputs.

mod cli;
mod run;
mod support;
