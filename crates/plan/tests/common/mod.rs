//! Shared by the plan crate's integration tests.
#![allow(dead_code)] // each test file uses a part

use std::path::PathBuf;

use sixgate_plan::{allocate, Lock, Plan};

/// `deploy/examples/plan.toml`: three clusters on two sites, one dual-stack.
pub fn example_text() -> String {
    std::fs::read_to_string(repo().join("deploy/examples/plan.toml")).expect("example plan")
}

pub fn example() -> (Plan, Lock) {
    let plan = Plan::parse(&example_text()).expect("example plan parses");
    let lock = allocate(&plan, &Lock::default()).expect("example plan allocates");
    (plan, lock)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}
