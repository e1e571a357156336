//! The body's value is `main`'s: any type `main` may return.

use std::process::ExitCode;

#[magpie::main(worker_threads = 1)]
async fn main() -> ExitCode {
    magpie::task::yield_now().await;
    ExitCode::SUCCESS
}
