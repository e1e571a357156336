//! `crate = "…"`: the runtime through another path, for a crate that re-exports magpie.

mod runtime {
    pub use magpie::*;
}

#[magpie::main(crate = "crate::runtime", worker_threads = 1)]
async fn main() {
    assert_eq!(runtime::spawn(async { 7 }).await.unwrap(), 7);
}
