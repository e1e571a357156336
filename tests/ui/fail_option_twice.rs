#[magpie::main(worker_threads = 2, thread_name = "a", worker_threads = 4)]
async fn main() {}
