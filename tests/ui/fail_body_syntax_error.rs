#[magpie::main]
async fn main() {
    let x = ;
}
