//! Raw declarations of libimp's C ABI, one to one with `include/imp/imp.h`: the same names, the same fields in
//! the same order, `#[repr(C)]`. Every function is `unsafe`; see the header for each one's contract and the
//! `imp` crate for the safe wrapper. C enums are `i32` type aliases with constants, so that a value this crate
//! does not know (from a newer libimp) is still a valid Rust value.
//!
//! The struct layouts are checked against the C compiler in `tests/layout.rs` (the values printed by
//! `bindings/layout/print_layout.c`) and, on 64-bit targets, by the assertions at the end of this file.
#![allow(non_camel_case_types)]

use std::marker::{PhantomData, PhantomPinned};
pub use std::os::raw::{c_char, c_void};

// ------------------------------------------------------------------------------------------------------------
// Versions
// ------------------------------------------------------------------------------------------------------------

pub const IMP_VERSION_MAJOR: i32 = 0;
pub const IMP_VERSION_MINOR: i32 = 1;
pub const IMP_VERSION_PATCH: i32 = 0;
/// Bumped whenever the ABI changes incompatibly; compare with `imp_abi_version()` at run time.
pub const IMP_ABI_VERSION: i32 = 1;

// ------------------------------------------------------------------------------------------------------------
// Status codes and errors
// ------------------------------------------------------------------------------------------------------------

pub type imp_status = i32;
pub const IMP_OK: imp_status = 0;
pub const IMP_ERR_INVALID_ARGUMENT: imp_status = -1;
pub const IMP_ERR_NULL_ARGUMENT: imp_status = -2;
pub const IMP_ERR_OUT_OF_MEMORY: imp_status = -3;
pub const IMP_ERR_IO: imp_status = -4;
pub const IMP_ERR_NOT_FOUND: imp_status = -5;
pub const IMP_ERR_MISSING_CONFIG: imp_status = -6;
pub const IMP_ERR_BAD_JSON: imp_status = -7;
pub const IMP_ERR_UNKNOWN_ARCH: imp_status = -8;
pub const IMP_ERR_BAD_CONFIG: imp_status = -9;
pub const IMP_ERR_BAD_HEADER: imp_status = -10;
pub const IMP_ERR_BAD_OFFSETS: imp_status = -11;
pub const IMP_ERR_MISSING_TENSOR: imp_status = -12;
pub const IMP_ERR_TENSOR_SHAPE: imp_status = -13;
pub const IMP_ERR_TENSOR_DTYPE: imp_status = -14;
pub const IMP_ERR_TOKEN_OUT_OF_RANGE: imp_status = -15;
pub const IMP_ERR_CONTEXT_FULL: imp_status = -16;
pub const IMP_ERR_BUFFER_TOO_SMALL: imp_status = -17;
pub const IMP_ERR_UNSUPPORTED: imp_status = -18;
pub const IMP_ERR_BAD_STATE: imp_status = -19;
pub const IMP_ERR_BACKEND: imp_status = -20;
pub const IMP_ERR_TOKENIZER: imp_status = -21;
pub const IMP_ERR_INTERNAL: imp_status = -99;

// ------------------------------------------------------------------------------------------------------------
// Logging
// ------------------------------------------------------------------------------------------------------------

/// Log levels, most severe first; a threshold lets a level and everything above through.
pub type imp_log_level = i32;
pub const IMP_LOG_ERROR: imp_log_level = 0;
pub const IMP_LOG_WARN: imp_log_level = 1;
pub const IMP_LOG_INFO: imp_log_level = 2;
pub const IMP_LOG_DEBUG: imp_log_level = 3;

/// Receives one message (UTF-8, NUL-terminated, valid only during the call) and the user_data given to
/// `imp_set_log_callback()`. Runs on whichever thread called into libimp, never two at once. It must not
/// unwind (catch panics) and must not call libimp.
pub type imp_log_callback =
    Option<unsafe extern "C" fn(level: imp_log_level, message: *const c_char, user_data: *mut c_void)>;

// ------------------------------------------------------------------------------------------------------------
// Models
// ------------------------------------------------------------------------------------------------------------

pub type imp_token = i32;

/// Opaque: loaded weights and config, immutable, shareable.
#[repr(C)]
pub struct imp_model {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Opaque: one sequence's state (KV cache, recurrent state).
#[repr(C)]
pub struct imp_context {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

pub type imp_backend = i32;
pub const IMP_BACKEND_AUTO: imp_backend = 0;
pub const IMP_BACKEND_CPU: imp_backend = 1;
pub const IMP_BACKEND_CUDA: imp_backend = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct imp_model_params {
    /// `sizeof(imp_model_params)`, set by `imp_model_default_params()`
    pub size: u32,
    /// an `imp_backend` value; default `IMP_BACKEND_CPU`
    pub backend: i32,
    /// CUDA device ordinal; ignored on the CPU; default 0
    pub device: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct imp_model_info {
    /// set to `size_of::<imp_model_info>()` by the caller before the call
    pub size: u32,
    pub n_vocab: i32,
    pub n_embd: i32,
    pub n_layer: i32,
    pub n_layer_full: i32,
    pub n_layer_linear: i32,
    pub n_expert: i32,
    pub n_expert_used: i32,
    pub n_mtp_layer: i32,
    pub n_ctx_train: i32,
    /// -1 if none
    pub eos_token: i32,
    /// "qwen3_5", "qwen3_5_moe" or "qwen3_next", NUL-terminated
    pub arch: [c_char; 32],
}

// ------------------------------------------------------------------------------------------------------------
// Contexts
// ------------------------------------------------------------------------------------------------------------

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct imp_context_params {
    /// `sizeof(imp_context_params)`, set by `imp_context_default_params()`
    pub size: u32,
    /// positions the context holds; 0 = 4096
    pub n_ctx: i32,
    /// CPU worker threads; 0 = all cores
    pub n_threads: i32,
}

// ------------------------------------------------------------------------------------------------------------
// Decoding
// ------------------------------------------------------------------------------------------------------------

pub type imp_logits_mode = i32;
pub const IMP_LOGITS_NONE: imp_logits_mode = 0;
pub const IMP_LOGITS_LAST: imp_logits_mode = 1;
pub const IMP_LOGITS_ALL: imp_logits_mode = 2;

// ------------------------------------------------------------------------------------------------------------
// Sampling
// ------------------------------------------------------------------------------------------------------------

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct imp_sampling_params {
    /// `sizeof(imp_sampling_params)`, set by `imp_sampling_default_params()`
    pub size: u32,
    /// 0 = greedy (argmax, ties to the lowest id)
    pub temperature: f32,
    /// 0 = off
    pub top_k: i32,
    /// 1 = off
    pub top_p: f32,
    /// 0 = off
    pub min_p: f32,
    /// seed of the context's random stream (4 bytes of padding before it, as in C)
    pub seed: u64,
}

// ------------------------------------------------------------------------------------------------------------
// MTP speculative decoding, step by step
// ------------------------------------------------------------------------------------------------------------

pub const IMP_MAX_DRAFT: usize = 16;
/// `imp_generate_params::n_draft`: choose k (0 included) adaptively at every step.
pub const IMP_DRAFT_AUTO: i32 = -1;

// ------------------------------------------------------------------------------------------------------------
// Generation
// ------------------------------------------------------------------------------------------------------------

/// Called with each emitted token, in order. Return 0 to go on, anything else to stop generation. It must not
/// unwind (catch panics) and must not use the context it was invoked for.
pub type imp_token_callback = Option<unsafe extern "C" fn(token: imp_token, user_data: *mut c_void) -> i32>;

pub type imp_stop_reason = i32;
pub const IMP_STOP_MAX_TOKENS: imp_stop_reason = 0;
pub const IMP_STOP_EOS: imp_stop_reason = 1;
pub const IMP_STOP_CALLBACK: imp_stop_reason = 2;
pub const IMP_STOP_CONTEXT_FULL: imp_stop_reason = 3;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct imp_generate_params {
    /// `sizeof(imp_generate_params)`, set by `imp_generate_default_params()`
    pub size: u32,
    /// tokens to emit at most (> 0); default 128
    pub max_tokens: i32,
    /// MTP drafts per step, 0 = plain decoding, at most `IMP_MAX_DRAFT`, or `IMP_DRAFT_AUTO`; default 0
    pub n_draft: i32,
    /// stop after this token; -1 = the model's eos_token_id, -2 = never; default -1
    pub eos_token: imp_token,
}

// ------------------------------------------------------------------------------------------------------------
// Statistics
// ------------------------------------------------------------------------------------------------------------

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct imp_stats {
    /// set to `size_of::<imp_stats>()` by the caller
    pub size: u32,
    /// drafts verified at depth i+1
    pub n_drafted: [i64; IMP_MAX_DRAFT],
    /// of which accepted
    pub n_accepted: [i64; IMP_MAX_DRAFT],
    pub n_emitted: i64,
    pub n_verify: i64,
    pub n_main_forward: i64,
    pub n_mtp_forward: i64,
    pub n_prefill_tokens: i64,
    pub t_prefill_ms: f64,
    pub t_prefill_mtp_ms: f64,
    pub t_decode_ms: f64,
    pub t_draft_ms: f64,
    pub t_verify_ms: f64,
}

// ------------------------------------------------------------------------------------------------------------
// Tokenizer
// ------------------------------------------------------------------------------------------------------------

/// Opaque: a loaded tokenizer.json, immutable, shareable.
#[repr(C)]
pub struct imp_tokenizer {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

// ------------------------------------------------------------------------------------------------------------
// Functions (IMP_CALL is __cdecl on Windows, the C convention elsewhere: extern "C")
// ------------------------------------------------------------------------------------------------------------

extern "C" {
    // Versions
    pub fn imp_version() -> *const c_char;
    pub fn imp_abi_version() -> i32;

    // Status codes and errors
    pub fn imp_last_error() -> *const c_char;
    pub fn imp_status_name(status: imp_status) -> *const c_char;

    // Logging
    pub fn imp_set_log_callback(callback: imp_log_callback, user_data: *mut c_void, max_level: imp_log_level)
        -> imp_status;

    // Models
    pub fn imp_model_default_params() -> imp_model_params;
    pub fn imp_model_load(out: *mut *mut imp_model, path: *const c_char, params: *const imp_model_params) -> imp_status;
    pub fn imp_model_free(model: *mut imp_model);
    pub fn imp_model_get_info(model: *const imp_model, out: *mut imp_model_info) -> imp_status;
    pub fn imp_model_n_vocab(model: *const imp_model) -> i32;

    // Contexts
    pub fn imp_context_default_params() -> imp_context_params;
    pub fn imp_context_create(out: *mut *mut imp_context, model: *mut imp_model, params: *const imp_context_params)
        -> imp_status;
    pub fn imp_context_free(ctx: *mut imp_context);
    pub fn imp_context_reset(ctx: *mut imp_context) -> imp_status;
    pub fn imp_context_n_past(ctx: *const imp_context) -> i32;
    pub fn imp_context_n_ctx(ctx: *const imp_context) -> i32;

    // Decoding
    pub fn imp_prefill(ctx: *mut imp_context, tokens: *const imp_token, n_tokens: i32, mode: imp_logits_mode,
                       logits: *mut f32, logits_capacity: usize) -> imp_status;
    pub fn imp_decode(ctx: *mut imp_context, token: imp_token, logits: *mut f32, logits_capacity: usize) -> imp_status;

    // Sampling
    pub fn imp_sampling_default_params() -> imp_sampling_params;
    pub fn imp_context_set_sampling(ctx: *mut imp_context, params: *const imp_sampling_params) -> imp_status;
    pub fn imp_sample(ctx: *mut imp_context, logits: *const f32, out: *mut imp_token) -> imp_status;

    // MTP speculative decoding, step by step
    pub fn imp_mtp_draft(ctx: *mut imp_context, last: imp_token, n_draft: i32, drafts: *mut imp_token,
                         draft_probs: *mut f32) -> imp_status;
    pub fn imp_mtp_verify(ctx: *mut imp_context, drafts: *const imp_token, n_drafts: i32, out: *mut imp_token,
                          out_capacity: i32, n_out: *mut i32, n_accepted: *mut i32) -> imp_status;

    // Generation
    pub fn imp_generate_default_params() -> imp_generate_params;
    pub fn imp_generate(ctx: *mut imp_context, prompt: *const imp_token, n_prompt: i32,
                        params: *const imp_generate_params, callback: imp_token_callback, user_data: *mut c_void,
                        out: *mut imp_token, out_capacity: usize, n_out: *mut usize, stop: *mut imp_stop_reason)
        -> imp_status;

    // Statistics
    pub fn imp_context_get_stats(ctx: *const imp_context, out: *mut imp_stats) -> imp_status;

    // Tokenizer
    pub fn imp_tokenizer_load(out: *mut *mut imp_tokenizer, path: *const c_char) -> imp_status;
    pub fn imp_tokenizer_free(tok: *mut imp_tokenizer);
    pub fn imp_tokenizer_n_vocab(tok: *const imp_tokenizer) -> i32;
    pub fn imp_tokenize(tok: *const imp_tokenizer, text: *const c_char, text_len: usize, parse_special: i32,
                        tokens: *mut imp_token, capacity: usize, n_tokens: *mut usize) -> imp_status;
    pub fn imp_detokenize(tok: *const imp_tokenizer, tokens: *const imp_token, n_tokens: usize, skip_special: i32,
                          buf: *mut c_char, capacity: usize, n_bytes: *mut usize) -> imp_status;
    pub fn imp_token_to_piece(tok: *const imp_tokenizer, token: imp_token, buf: *mut c_char, capacity: usize,
                              n_bytes: *mut usize) -> imp_status;
    pub fn imp_tokenizer_token_id(tok: *const imp_tokenizer, text: *const c_char, out: *mut imp_token) -> imp_status;
    pub fn imp_tokenizer_is_special(tok: *const imp_tokenizer, token: imp_token) -> i32;
    pub fn imp_utf8_incomplete_tail(bytes: *const c_char, n: usize) -> usize;
}

// ------------------------------------------------------------------------------------------------------------
// Defaults from the library's own getters
// ------------------------------------------------------------------------------------------------------------

impl Default for imp_model_params {
    fn default() -> Self {
        unsafe { imp_model_default_params() }
    }
}
impl Default for imp_context_params {
    fn default() -> Self {
        unsafe { imp_context_default_params() }
    }
}
impl Default for imp_sampling_params {
    fn default() -> Self {
        unsafe { imp_sampling_default_params() }
    }
}
impl Default for imp_generate_params {
    fn default() -> Self {
        unsafe { imp_generate_default_params() }
    }
}

// The layouts of x86-64 / AArch64 Linux and Windows, as print_layout.c prints them there.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<imp_model_params>() == 12);
    assert!(std::mem::size_of::<imp_model_info>() == 76);
    assert!(std::mem::size_of::<imp_context_params>() == 12);
    assert!(std::mem::size_of::<imp_sampling_params>() == 32);
    assert!(std::mem::size_of::<imp_generate_params>() == 16);
    assert!(std::mem::size_of::<imp_stats>() == 344);
};
