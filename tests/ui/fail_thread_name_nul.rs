#[magpie::main(thread_name = "api\0x")]
async fn main() {}
