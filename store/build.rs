//! Rebuilds when migrations change: they are embedded into the binary.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
