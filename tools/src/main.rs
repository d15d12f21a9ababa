//! `vmcirc`: the host tool (placeholder until the tool lands).
fn main() {}
