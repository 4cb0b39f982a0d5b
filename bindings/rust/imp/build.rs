//! Gives this crate's tests an rpath to the libimp folder imp-sys found (DEP_IMP_LIB_DIR), so they
//! run without LD_LIBRARY_PATH. Libraries and programs that use `imp` decide their own rpath.
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_IMP_LIB_DIR");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if let Ok(d) = env::var("DEP_IMP_LIB_DIR") {
        if os != "windows" && !d.is_empty() {
            println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{}", d);
        }
    }
}
