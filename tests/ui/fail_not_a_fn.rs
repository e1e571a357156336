#[magpie::main]
struct Server;

fn main() {}
