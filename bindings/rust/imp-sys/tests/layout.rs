//! Every struct of imp-sys against the C compiler: the test runs bindings/layout/print_layout.c's program (path
//! in IMP_LAYOUT_PROGRAM; CTest sets it) and compares size, alignment, and each field's offset and size.
use imp_sys::*;
use std::collections::BTreeMap;
use std::mem::{align_of, size_of, MaybeUninit};
use std::process::Command;

fn pointee_size<T>(_: *const T) -> usize {
    size_of::<T>()
}

// (offset, size) of a field, without offset_of! (kept buildable with Debian 12's rustc 1.63).
macro_rules! field {
    ($map:ident, $t:ident, $f:ident) => {{
        let u = MaybeUninit::<$t>::uninit();
        let base = u.as_ptr();
        let p = unsafe { std::ptr::addr_of!((*base).$f) };
        $map.insert(
            format!("field {}.{}", stringify!($t), stringify!($f)),
            format!("{} {}", p as usize - base as usize, pointee_size(p)),
        );
    }};
}

macro_rules! layout {
    ($map:ident, $t:ident { $($f:ident),* $(,)? }) => {{
        $map.insert(format!("struct {}", stringify!($t)), format!("{} {}", size_of::<$t>(), align_of::<$t>()));
        $(field!($map, $t, $f);)*
    }};
}

fn rust_layout() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    layout!(m, imp_model_params { size, backend, device });
    layout!(m, imp_model_info {
        size, n_vocab, n_embd, n_layer, n_layer_full, n_layer_linear, n_expert, n_expert_used, n_mtp_layer,
        n_ctx_train, eos_token, arch,
    });
    layout!(m, imp_context_params { size, n_ctx, n_threads });
    layout!(m, imp_sampling_params { size, temperature, top_k, top_p, min_p, seed });
    layout!(m, imp_generate_params { size, max_tokens, n_draft, eos_token });
    layout!(m, imp_stats {
        size, n_drafted, n_accepted, n_emitted, n_verify, n_main_forward, n_mtp_forward, n_prefill_tokens,
        t_prefill_ms, t_prefill_mtp_ms, t_decode_ms, t_draft_ms, t_verify_ms,
    });
    // The enums are i32 aliases; C must agree on their width.
    m.insert("const sizeof_enum".into(), size_of::<imp_status>().to_string());
    m.insert("const IMP_ABI_VERSION".into(), IMP_ABI_VERSION.to_string());
    m.insert("const IMP_MAX_DRAFT".into(), IMP_MAX_DRAFT.to_string());
    m.insert("const IMP_DRAFT_AUTO".into(), IMP_DRAFT_AUTO.to_string());
    m
}

#[test]
fn struct_layouts_match_c() {
    let prog = std::env::var("IMP_LAYOUT_PROGRAM")
        .expect("IMP_LAYOUT_PROGRAM must name the print_layout program (ctest -R bindings_rust sets it)");
    let out = Command::new(&prog).output().unwrap_or_else(|e| panic!("running {}: {}", prog, e));
    assert!(out.status.success(), "{} failed", prog);
    let mut c = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 3 {
            c.insert(format!("{} {}", w[0], w[1]), w[2..].join(" "));
        }
    }
    let rust = rust_layout();
    let mut bad = Vec::new();
    for (k, v) in &c {
        match rust.get(k) {
            Some(r) if r == v => {}
            Some(r) => bad.push(format!("{}: C {} vs Rust {}", k, v, r)),
            None => bad.push(format!("{}: missing in Rust", k)),
        }
    }
    for k in rust.keys() {
        if !c.contains_key(k) {
            bad.push(format!("{}: missing in C", k));
        }
    }
    assert!(bad.is_empty(), "layout differences:\n{}", bad.join("\n"));
    println!("{} struct/field/constant entries equal", c.len());
}

#[test]
fn abi_version_matches_library() {
    assert_eq!(unsafe { imp_abi_version() }, IMP_ABI_VERSION);
}
