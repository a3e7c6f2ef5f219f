//! staunch-lab: see what staunch does to an outage.

fn main() {}
