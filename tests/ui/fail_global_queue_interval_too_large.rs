#[magpie::test(global_queue_interval = 5_000_000_000)]
async fn too_large() {}

fn main() {}
