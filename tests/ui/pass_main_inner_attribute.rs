//! An inner attribute at the top of `main`'s body.

#[magpie::main(worker_threads = 1)]
async fn main() {
    #![allow(unused_variables)]
    let unused = magpie::spawn(async { 1 }).await.unwrap();
}
