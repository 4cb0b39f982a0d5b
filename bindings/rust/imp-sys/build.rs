//! Finds libimp: the folder in IMP_LIB_DIR, else the -L folders `pkg-config --libs-only-L imp` prints (the
//! pkg-config command is run directly; no crates). Links `imp` dynamically (libimp.so, imp.lib + imp.dll) and
//! passes the folder on to dependents as DEP_IMP_LIB_DIR (this crate `links = "imp"`), so `imp` can set an
//! rpath for its own tests.
use std::env;
use std::process::Command;

fn pkg_config_dirs() -> Result<Vec<String>, String> {
    let exe = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let out = Command::new(&exe)
        .args(["--libs-only-L", "imp"])
        .output()
        .map_err(|e| format!("could not run {}: {}", exe, e))?;
    if !out.status.success() {
        return Err(format!("{} --libs-only-L imp failed: {}", exe, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|f| f.strip_prefix("-L"))
        .map(String::from)
        .collect())
}

fn main() {
    println!("cargo:rerun-if-env-changed=IMP_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    let dirs = match env::var("IMP_LIB_DIR") {
        Ok(d) if !d.is_empty() => vec![d],
        _ => pkg_config_dirs().unwrap_or_else(|e| {
            panic!("imp-sys: set IMP_LIB_DIR to the folder holding libimp (libimp.so / imp.lib), or install libimp with its imp.pc for pkg-config ({})", e)
        }),
    };
    for d in &dirs {
        println!("cargo:rustc-link-search=native={}", d);
    }
    println!("cargo:rustc-link-lib=dylib=imp");
    if let Some(d) = dirs.first() {
        println!("cargo:lib_dir={}", d);
        let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
        if os != "windows" {
            println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{}", d);
        }
    }
}
