#[magpie::test(thread_name = worker)]
async fn name_is_not_a_string() {}

fn main() {}
