#[magpie::test]
async fn bounded() where u8: Copy {}

fn main() {}
