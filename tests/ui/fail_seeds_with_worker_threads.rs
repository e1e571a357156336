#[magpie::test(seeds = 100, worker_threads = 2)]
async fn race() {}

fn main() {}
