//! What the benchmark (`main.rs`) and its focused programs (`examples/`) share: the
//! summaries of measured samples, so that every program records and reports a latency the
//! same way.

pub mod stats;
