//! `main` may return a `Result`, and `?` works in its body.

use std::error::Error;

#[magpie::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let text = magpie::spawn(async { "42" }).await?;
    let n: u32 = text.parse()?;
    assert_eq!(n, 42);
    Ok(())
}
