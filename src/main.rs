//! The single `tepui` binary: argument parsing and wiring only.

fn main() {}
