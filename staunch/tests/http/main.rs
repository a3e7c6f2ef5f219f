//! Integration tests of the `http` module: tower-test mocks in paused time, and a real hyper
//! server and hyper-util client on 127.0.0.1.
#![cfg(all(feature = "http", feature = "tower"))]

mod loopback;
mod mock;
mod support;

mod grpc;
mod pipeline;
#[cfg(feature = "reqwest")]
mod reqwest_middleware;
