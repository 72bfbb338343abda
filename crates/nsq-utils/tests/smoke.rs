//! The test helpers find the binaries they run.
mod common;
