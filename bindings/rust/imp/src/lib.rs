//! Safe Rust bindings of libimp (`include/imp/imp.h`), one call per method.
//!
//! * [`Model`] (`imp_model`) is immutable and `Send + Sync`: share it in an [`Arc`] among contexts and threads.
//! * [`Context`] (`imp_context`) is one sequence's state; it is `Send` but not `Sync` (one thread at a time, as
//!   imp.h requires) and holds an `Arc<Model>`, so the model is freed only after its last context.
//! * [`Tokenizer`] (`imp_tokenizer`) is immutable and `Send + Sync`.
//! * Every failing `imp_status` becomes an [`Error`]: the [`Status`] and the text of `imp_last_error()`.
//! * `Drop` frees each object with its `imp_*_free`.
//! * [`set_log_callback`] (`imp_set_log_callback`) sends libimp's log messages to a closure.
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! let model = Arc::new(imp::Model::load("models/imp-demo")?);
//! let mut ctx = imp::Context::new(&model)?;
//! let mut gp = imp::GenerateParams::default();
//! gp.n_draft = 3; // MTP: three drafts per verify step
//! let mut out = [0; 64];
//! let done = ctx.generate(&[9707, 11, 1879], &gp, &mut out, |t| { print!("{} ", t); true })?;
//! println!("{} tokens, {:?}", done.n_emitted, done.stop);
//! # Ok::<(), imp::Error>(())
//! ```
//!
//! A context is not `Sync`:
//! ```compile_fail
//! fn sync<T: Sync>() {}
//! sync::<imp::Context>();
//! ```
use std::borrow::Cow;
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_void};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex};

pub use imp_sys as sys;

pub type Token = sys::imp_token;
pub type ModelParams = sys::imp_model_params;
pub type ModelInfo = sys::imp_model_info;
pub type ContextParams = sys::imp_context_params;
pub type SamplingParams = sys::imp_sampling_params;
pub type GenerateParams = sys::imp_generate_params;
pub type Stats = sys::imp_stats;
pub const MAX_DRAFT: usize = sys::IMP_MAX_DRAFT;

// ------------------------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------------------------

/// The error codes of `imp_status` (every value but `IMP_OK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    InvalidArgument,
    NullArgument,
    OutOfMemory,
    Io,
    NotFound,
    MissingConfig,
    BadJson,
    UnknownArch,
    BadConfig,
    BadHeader,
    BadOffsets,
    MissingTensor,
    TensorShape,
    TensorDtype,
    TokenOutOfRange,
    ContextFull,
    BufferTooSmall,
    Unsupported,
    BadState,
    Backend,
    Tokenizer,
    Internal,
    /// A code this crate does not know (a newer libimp).
    Other(i32),
}

const STATUS_CODES: [(Status, sys::imp_status); 22] = [
    (Status::InvalidArgument, sys::IMP_ERR_INVALID_ARGUMENT),
    (Status::NullArgument, sys::IMP_ERR_NULL_ARGUMENT),
    (Status::OutOfMemory, sys::IMP_ERR_OUT_OF_MEMORY),
    (Status::Io, sys::IMP_ERR_IO),
    (Status::NotFound, sys::IMP_ERR_NOT_FOUND),
    (Status::MissingConfig, sys::IMP_ERR_MISSING_CONFIG),
    (Status::BadJson, sys::IMP_ERR_BAD_JSON),
    (Status::UnknownArch, sys::IMP_ERR_UNKNOWN_ARCH),
    (Status::BadConfig, sys::IMP_ERR_BAD_CONFIG),
    (Status::BadHeader, sys::IMP_ERR_BAD_HEADER),
    (Status::BadOffsets, sys::IMP_ERR_BAD_OFFSETS),
    (Status::MissingTensor, sys::IMP_ERR_MISSING_TENSOR),
    (Status::TensorShape, sys::IMP_ERR_TENSOR_SHAPE),
    (Status::TensorDtype, sys::IMP_ERR_TENSOR_DTYPE),
    (Status::TokenOutOfRange, sys::IMP_ERR_TOKEN_OUT_OF_RANGE),
    (Status::ContextFull, sys::IMP_ERR_CONTEXT_FULL),
    (Status::BufferTooSmall, sys::IMP_ERR_BUFFER_TOO_SMALL),
    (Status::Unsupported, sys::IMP_ERR_UNSUPPORTED),
    (Status::BadState, sys::IMP_ERR_BAD_STATE),
    (Status::Backend, sys::IMP_ERR_BACKEND),
    (Status::Tokenizer, sys::IMP_ERR_TOKENIZER),
    (Status::Internal, sys::IMP_ERR_INTERNAL),
];

impl Status {
    /// The status for a non-OK code.
    pub fn from_code(code: sys::imp_status) -> Status {
        STATUS_CODES.iter().find(|(_, c)| *c == code).map(|(s, _)| *s).unwrap_or(Status::Other(code))
    }
    /// The C value.
    pub fn code(self) -> sys::imp_status {
        match self {
            Status::Other(c) => c,
            s => STATUS_CODES.iter().find(|(t, _)| *t == s).map(|(_, c)| *c).unwrap(),
        }
    }
    /// `imp_status_name()`: "IMP_ERR_NOT_FOUND".
    pub fn name(self) -> &'static str {
        unsafe { static_str(sys::imp_status_name(self.code())) }
    }
}

/// A failed libimp call: its status and the message `imp_last_error()` gave on the calling thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Ok for IMP_OK; otherwise the error with imp_last_error(), read before any other libimp call clears it.
fn check(status: sys::imp_status) -> Result<()> {
    if status == sys::IMP_OK {
        return Ok(());
    }
    let message = unsafe { CStr::from_ptr(sys::imp_last_error()) }.to_string_lossy().into_owned();
    Err(Error { status: Status::from_code(status), message })
}

fn invalid(message: String) -> Error {
    Error { status: Status::InvalidArgument, message }
}

unsafe fn static_str(p: *const c_char) -> &'static str {
    if p.is_null() {
        ""
    } else {
        CStr::from_ptr(p).to_str().unwrap_or("")
    }
}

fn path_cstring(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .ok_or_else(|| invalid(format!("path {:?} is not valid UTF-8", path)))?
        .as_bytes()
        .to_vec();
    CString::new(bytes).map_err(|_| invalid(format!("path {:?} holds a NUL byte", path)))
}

fn len_i32(n: usize, what: &str) -> Result<i32> {
    if n > i32::MAX as usize {
        Err(invalid(format!("{} has {} elements, more than an int32_t holds", what, n)))
    } else {
        Ok(n as i32)
    }
}

// ------------------------------------------------------------------------------------------------------------
// Library
// ------------------------------------------------------------------------------------------------------------

/// `imp_version()`: "MAJOR.MINOR.PATCH".
pub fn version() -> &'static str {
    unsafe { static_str(sys::imp_version()) }
}

/// `imp_abi_version()`; equal to `sys::IMP_ABI_VERSION` when these bindings match the library.
pub fn abi_version() -> i32 {
    unsafe { sys::imp_abi_version() }
}

/// `imp_utf8_incomplete_tail()`: how many bytes at the end of `bytes` start a UTF-8 character not complete yet.
pub fn utf8_incomplete_tail(bytes: &[u8]) -> usize {
    unsafe { sys::imp_utf8_incomplete_tail(bytes.as_ptr() as *const c_char, bytes.len()) }
}

// ------------------------------------------------------------------------------------------------------------
// Logging
// ------------------------------------------------------------------------------------------------------------

/// The level of a log message (`imp_log_level`), most severe first: `Error < Warn < Info < Debug`, so a
/// threshold `max` lets through every `level <= max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// a call failed (every failed libimp call is logged at this level, "IMP_ERR_...: message")
    Error = 0,
    /// libimp went on, but not quite as asked (a fallback, a clamped value)
    Warn = 1,
    /// a few lines per significant event (a model loaded, a context created)
    Info = 2,
    /// details for developing libimp; may be many lines per call
    Debug = 3,
}

impl LogLevel {
    /// The level of a C value; values past `IMP_LOG_DEBUG` (a newer libimp) count as `Debug`.
    pub fn from_code(code: sys::imp_log_level) -> LogLevel {
        match code {
            c if c <= sys::IMP_LOG_ERROR => LogLevel::Error,
            sys::IMP_LOG_WARN => LogLevel::Warn,
            sys::IMP_LOG_INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }
    /// The C value.
    pub fn code(self) -> sys::imp_log_level {
        self as sys::imp_log_level
    }
}

/// A log handler for [`set_log_callback`]: the level and the message (no trailing newline).
pub type LogCallback = Box<dyn Fn(LogLevel, &str) + Send + Sync + 'static>;

/// The installed handler, owned here and lent to libimp as its user_data (a thin pointer to the box).
struct LogSink(NonNull<LogCallback>);

// The pointee is a `LogCallback`, which is Send + Sync.
unsafe impl Send for LogSink {}

impl Drop for LogSink {
    fn drop(&mut self) {
        unsafe { drop(Box::from_raw(self.0.as_ptr())) }
    }
}

/// What libimp holds now. The lock serialises setters so that this always matches the native sink; the
/// trampoline never takes it (libimp holds its own lock while a callback runs, and a setter waits on that).
static LOG_SINK: Mutex<Option<LogSink>> = Mutex::new(None);

thread_local! {
    /// True while this thread runs a log handler: set_log_callback() is then refused without taking LOG_SINK.
    static IN_LOG_CALLBACK: Cell<bool> = Cell::new(false);
}

/// Marks this thread as inside a log handler until dropped (also when the handler panics).
struct InLogCallback(bool);

impl InLogCallback {
    fn enter() -> InLogCallback {
        InLogCallback(IN_LOG_CALLBACK.try_with(|f| f.replace(true)).unwrap_or(false))
    }
}

impl Drop for InLogCallback {
    fn drop(&mut self) {
        let outer = self.0;
        let _ = IN_LOG_CALLBACK.try_with(|f| f.set(outer));
    }
}

/// The `imp_log_callback` libimp calls: forwards to the boxed handler in user_data. A panic stops at
/// catch_unwind (the default hook has printed it); nothing unwinds into C.
unsafe extern "C" fn log_trampoline(level: sys::imp_log_level, message: *const c_char, user_data: *mut c_void) {
    if user_data.is_null() {
        return;
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _inside = InLogCallback::enter();
        // libimp guarantees user_data stays valid: the sink is freed only after imp_set_log_callback replaced it.
        let handler = &*(user_data as *const LogCallback);
        let text = if message.is_null() { Cow::Borrowed("") } else { CStr::from_ptr(message).to_string_lossy() };
        handler(LogLevel::from_code(level), &text);
    }));
    if let Err(payload) = result {
        // Dropping the payload runs user code too; should that panic, leak its payload rather than unwind.
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    }
}

/// `imp_set_log_callback()`: sends libimp's messages of level `<= max_level`, from every model and context of
/// the process, to `callback`; `None` turns logging off (the default: libimp never prints anything itself).
///
/// The handler runs on whichever thread called into libimp, one call at a time, and must not call libimp
/// (calling `set_log_callback` from inside it returns `Status::BadState`). A panic in it is caught and goes no
/// further. When this returns, the previous handler is not running and will not be called again, and it has
/// been dropped.
///
/// ```no_run
/// imp::set_log_callback(Some(Box::new(|level, msg| eprintln!("[{:?}] {}", level, msg))), imp::LogLevel::Info)?;
/// assert!(imp::Model::load("/nonexistent").is_err()); // logged: [Error] IMP_ERR_NOT_FOUND: ...
/// imp::set_log_callback(None, imp::LogLevel::Error)?;
/// # Ok::<(), imp::Error>(())
/// ```
pub fn set_log_callback(callback: Option<LogCallback>, max_level: LogLevel) -> Result<()> {
    // Checked before the lock: another thread may hold it while libimp waits for this thread's handler.
    if IN_LOG_CALLBACK.try_with(|f| f.get()).unwrap_or(false) {
        return Err(Error {
            status: Status::BadState,
            message: "imp::set_log_callback was called from inside a log callback".to_string(),
        });
    }
    let new = callback.map(|cb| LogSink(NonNull::from(Box::leak(Box::new(cb)))));
    let (trampoline, user_data): (sys::imp_log_callback, *mut c_void) = match &new {
        Some(sink) => (Some(log_trampoline), sink.0.as_ptr() as *mut c_void),
        None => (None, ptr::null_mut()),
    };
    let old = {
        let mut installed = LOG_SINK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // On failure libimp changed nothing: `new` is dropped (after the lock) and the old sink stays.
        check(unsafe { sys::imp_set_log_callback(trampoline, user_data, max_level.code()) })?;
        std::mem::replace(&mut *installed, new)
    };
    drop(old); // libimp no longer calls it; its drop runs outside the lock
    Ok(())
}

// ------------------------------------------------------------------------------------------------------------
// Models
// ------------------------------------------------------------------------------------------------------------

/// A loaded model (`imp_model`): immutable after loading, shared by any number of contexts on any threads.
pub struct Model {
    raw: NonNull<sys::imp_model>,
}

// imp.h: a model is immutable after imp_model_load() and may be shared by many contexts on many threads.
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

impl Model {
    /// `imp_model_load()` with the default params.
    pub fn load<P: AsRef<Path>>(path: P) -> Result<Model> {
        Model::load_with(path, &ModelParams::default())
    }

    /// `imp_model_load()`: a Hugging Face model directory (config.json + *.safetensors).
    pub fn load_with<P: AsRef<Path>>(path: P, params: &ModelParams) -> Result<Model> {
        let c = path_cstring(path.as_ref())?;
        let mut p = *params;
        p.size = std::mem::size_of::<ModelParams>() as u32;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::imp_model_load(&mut raw, c.as_ptr(), &p) })?;
        Ok(Model { raw: NonNull::new(raw).expect("imp_model_load returned IMP_OK and NULL") })
    }

    /// `imp_model_get_info()`.
    pub fn info(&self) -> Result<ModelInfo> {
        let mut info: ModelInfo = unsafe { std::mem::zeroed() };
        info.size = std::mem::size_of::<ModelInfo>() as u32;
        check(unsafe { sys::imp_model_get_info(self.raw.as_ptr(), &mut info) })?;
        Ok(info)
    }

    /// `imp_model_info.arch` as a string.
    pub fn arch(&self) -> Result<String> {
        let info = self.info()?;
        let bytes: Vec<u8> = info.arch.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `imp_model_n_vocab()`.
    pub fn n_vocab(&self) -> usize {
        unsafe { sys::imp_model_n_vocab(self.raw.as_ptr()) as usize }
    }

    /// The raw handle, for calls through `imp_sys`. It stays owned by this Model.
    pub fn as_ptr(&self) -> *mut sys::imp_model {
        self.raw.as_ptr()
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        unsafe { sys::imp_model_free(self.raw.as_ptr()) }
    }
}

// ------------------------------------------------------------------------------------------------------------
// Contexts
// ------------------------------------------------------------------------------------------------------------

/// Which logits `Context::prefill` writes (`imp_logits_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitsMode {
    /// none
    None = 0,
    /// the last row's: n_vocab floats
    Last = 1,
    /// every row's, row-major: n_tokens * n_vocab floats
    All = 2,
}

/// Why `Context::generate` stopped (`imp_stop_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    MaxTokens,
    Eos,
    Callback,
    ContextFull,
    Other(i32),
}

impl StopReason {
    fn from_code(c: sys::imp_stop_reason) -> StopReason {
        match c {
            sys::IMP_STOP_MAX_TOKENS => StopReason::MaxTokens,
            sys::IMP_STOP_EOS => StopReason::Eos,
            sys::IMP_STOP_CALLBACK => StopReason::Callback,
            sys::IMP_STOP_CONTEXT_FULL => StopReason::ContextFull,
            c => StopReason::Other(c),
        }
    }
}

/// What `Context::generate` did: tokens emitted (also those past `out`) and why it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generated {
    pub n_emitted: usize,
    pub stop: StopReason,
}

/// One sequence's state (`imp_context`). `Send`, not `Sync`: one thread at a time, moved freely between calls.
pub struct Context {
    raw: NonNull<sys::imp_context>,
    model: Arc<Model>,
    n_vocab: usize,
}

// imp.h: a context is used by one thread at a time and may move between threads between calls. No Sync:
// &Context methods (n_past, stats) must not overlap with &mut ones on another thread.
unsafe impl Send for Context {}

impl Context {
    /// `imp_context_create()` with the default params.
    pub fn new(model: &Arc<Model>) -> Result<Context> {
        Context::with_params(model, &ContextParams::default())
    }

    /// `imp_context_create()`. The context holds `model` (an `Arc`), which outlives it.
    pub fn with_params(model: &Arc<Model>, params: &ContextParams) -> Result<Context> {
        let mut p = *params;
        p.size = std::mem::size_of::<ContextParams>() as u32;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::imp_context_create(&mut raw, model.as_ptr(), &p) })?;
        Ok(Context {
            raw: NonNull::new(raw).expect("imp_context_create returned IMP_OK and NULL"),
            model: Arc::clone(model),
            n_vocab: model.n_vocab(),
        })
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    /// `imp_context_reset()`: position 0, empty caches, the sampler's random stream restarted.
    pub fn reset(&mut self) -> Result<()> {
        check(unsafe { sys::imp_context_reset(self.raw.as_ptr()) })
    }

    /// `imp_context_n_past()`.
    pub fn n_past(&self) -> usize {
        unsafe { sys::imp_context_n_past(self.raw.as_ptr()) as usize }
    }

    /// `imp_context_n_ctx()`.
    pub fn n_ctx(&self) -> usize {
        unsafe { sys::imp_context_n_ctx(self.raw.as_ptr()) as usize }
    }

    /// `imp_prefill()`: appends `tokens` in one batched forward; `logits` may be None only with `LogitsMode::None`.
    pub fn prefill(&mut self, tokens: &[Token], mode: LogitsMode, logits: Option<&mut [f32]>) -> Result<()> {
        let n = len_i32(tokens.len(), "tokens")?;
        let (lp, cap) = match logits {
            Some(l) => (l.as_mut_ptr(), l.len()),
            None => (ptr::null_mut(), 0),
        };
        check(unsafe { sys::imp_prefill(self.raw.as_ptr(), tokens.as_ptr(), n, mode as i32, lp, cap) })
    }

    /// `imp_decode()`: one token; `logits` (n_vocab floats) may be None.
    pub fn decode(&mut self, token: Token, logits: Option<&mut [f32]>) -> Result<()> {
        let (lp, cap) = match logits {
            Some(l) => (l.as_mut_ptr(), l.len()),
            None => (ptr::null_mut(), 0),
        };
        check(unsafe { sys::imp_decode(self.raw.as_ptr(), token, lp, cap) })
    }

    /// `imp_context_set_sampling()`.
    pub fn set_sampling(&mut self, params: &SamplingParams) -> Result<()> {
        let mut p = *params;
        p.size = std::mem::size_of::<SamplingParams>() as u32;
        check(unsafe { sys::imp_context_set_sampling(self.raw.as_ptr(), &p) })
    }

    /// `imp_sample()`: a token from `logits` (n_vocab floats) with the context's sampler.
    pub fn sample(&mut self, logits: &[f32]) -> Result<Token> {
        if logits.len() < self.n_vocab {
            return Err(Error {
                status: Status::BufferTooSmall,
                message: format!("logits holds {} floats, the vocabulary {}", logits.len(), self.n_vocab),
            });
        }
        let mut t = -1;
        check(unsafe { sys::imp_sample(self.raw.as_ptr(), logits.as_ptr(), &mut t) })?;
        Ok(t)
    }

    /// `imp_mtp_draft()`: drafts `drafts.len()` tokens after `last` (their probabilities into `probs`, if given).
    pub fn mtp_draft(&mut self, last: Token, drafts: &mut [Token], probs: Option<&mut [f32]>) -> Result<()> {
        let n = len_i32(drafts.len(), "drafts")?;
        let pp = match probs {
            Some(p) if p.len() >= drafts.len() => p.as_mut_ptr(),
            Some(_) => return Err(invalid("probs is shorter than drafts".into())),
            None => ptr::null_mut(),
        };
        check(unsafe { sys::imp_mtp_draft(self.raw.as_ptr(), last, n, drafts.as_mut_ptr(), pp) })
    }

    /// `imp_mtp_verify()`: verifies `drafts` (a prefix of the last draft) and writes the accepted drafts plus one
    /// token to `out` (at least drafts.len() + 1 long). Returns (n_out, n_accepted); n_out = n_accepted + 1.
    pub fn mtp_verify(&mut self, drafts: &[Token], out: &mut [Token]) -> Result<(usize, usize)> {
        let n = len_i32(drafts.len(), "drafts")?;
        let cap = len_i32(out.len(), "out")?;
        let (mut n_out, mut n_acc) = (0i32, 0i32);
        check(unsafe {
            sys::imp_mtp_verify(self.raw.as_ptr(), drafts.as_ptr(), n, out.as_mut_ptr(), cap, &mut n_out, &mut n_acc)
        })?;
        Ok((n_out as usize, n_acc as usize))
    }

    /// `imp_generate()` without a callback: the first `out.len()` tokens go to `out`.
    pub fn generate_into(&mut self, prompt: &[Token], params: &GenerateParams, out: &mut [Token]) -> Result<Generated> {
        self.generate_raw(prompt, params, out, None, ptr::null_mut())
    }

    /// `imp_generate()`: `on_token` sees each token as it is emitted and returns false to stop; the first
    /// `out.len()` tokens also go to `out`. A panic in `on_token` stops generation and resumes after the call.
    pub fn generate<F: FnMut(Token) -> bool>(&mut self, prompt: &[Token], params: &GenerateParams, out: &mut [Token],
                                             on_token: F) -> Result<Generated> {
        struct State<F> {
            f: F,
            panic: Option<Box<dyn std::any::Any + Send + 'static>>,
        }
        unsafe extern "C" fn trampoline<F: FnMut(Token) -> bool>(token: Token, user_data: *mut c_void) -> i32 {
            let st = &mut *(user_data as *mut State<F>);
            if st.panic.is_some() {
                return 1;
            }
            match catch_unwind(AssertUnwindSafe(|| (st.f)(token))) {
                Ok(true) => 0,
                Ok(false) => 1,
                Err(p) => {
                    st.panic = Some(p); // never unwind through libimp's frames
                    1
                }
            }
        }
        let mut state = State { f: on_token, panic: None };
        let r = self.generate_raw(prompt, params, out, Some(trampoline::<F>), &mut state as *mut State<F> as *mut c_void);
        if let Some(p) = state.panic {
            resume_unwind(p);
        }
        r
    }

    fn generate_raw(&mut self, prompt: &[Token], params: &GenerateParams, out: &mut [Token],
                    callback: sys::imp_token_callback, user_data: *mut c_void) -> Result<Generated> {
        let n = len_i32(prompt.len(), "prompt")?;
        let mut p = *params;
        p.size = std::mem::size_of::<GenerateParams>() as u32;
        let (mut n_out, mut stop) = (0usize, sys::IMP_STOP_MAX_TOKENS);
        let op = if out.is_empty() { ptr::null_mut() } else { out.as_mut_ptr() };
        check(unsafe {
            sys::imp_generate(self.raw.as_ptr(), prompt.as_ptr(), n, &p, callback, user_data, op, out.len(), &mut n_out,
                              &mut stop)
        })?;
        Ok(Generated { n_emitted: n_out, stop: StopReason::from_code(stop) })
    }

    /// `imp_context_get_stats()`.
    pub fn stats(&self) -> Result<Stats> {
        let mut s: Stats = unsafe { std::mem::zeroed() };
        s.size = std::mem::size_of::<Stats>() as u32;
        check(unsafe { sys::imp_context_get_stats(self.raw.as_ptr(), &mut s) })?;
        Ok(s)
    }

    /// The raw handle, for calls through `imp_sys`. It stays owned by this Context.
    pub fn as_ptr(&self) -> *mut sys::imp_context {
        self.raw.as_ptr()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // Freed before self.model's Arc is released: the model outlives the context.
        unsafe { sys::imp_context_free(self.raw.as_ptr()) }
    }
}

// ------------------------------------------------------------------------------------------------------------
// Tokenizer
// ------------------------------------------------------------------------------------------------------------

/// A loaded tokenizer.json (`imp_tokenizer`): immutable, usable from many threads at once.
pub struct Tokenizer {
    raw: NonNull<sys::imp_tokenizer>,
}

unsafe impl Send for Tokenizer {}
unsafe impl Sync for Tokenizer {}

impl Tokenizer {
    /// `imp_tokenizer_load()`: a tokenizer.json file or a directory holding one.
    pub fn load<P: AsRef<Path>>(path: P) -> Result<Tokenizer> {
        let c = path_cstring(path.as_ref())?;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::imp_tokenizer_load(&mut raw, c.as_ptr()) })?;
        Ok(Tokenizer { raw: NonNull::new(raw).expect("imp_tokenizer_load returned IMP_OK and NULL") })
    }

    /// `imp_tokenizer_n_vocab()`.
    pub fn n_vocab(&self) -> usize {
        unsafe { sys::imp_tokenizer_n_vocab(self.raw.as_ptr()) as usize }
    }

    /// `imp_tokenize()`: ids of `text`; special added tokens are matched only with `parse_special`.
    pub fn tokenize(&self, text: &str, parse_special: bool) -> Result<Vec<Token>> {
        let mut n = 0usize;
        let tp = text.as_ptr() as *const c_char;
        let st = unsafe {
            sys::imp_tokenize(self.raw.as_ptr(), tp, text.len(), parse_special as i32, ptr::null_mut(), 0, &mut n)
        };
        if st != sys::IMP_ERR_BUFFER_TOO_SMALL {
            check(st)?;
        }
        let mut ids = vec![0; n];
        if n > 0 {
            check(unsafe {
                sys::imp_tokenize(self.raw.as_ptr(), tp, text.len(), parse_special as i32, ids.as_mut_ptr(), n, &mut n)
            })?;
        }
        Ok(ids)
    }

    /// `imp_detokenize()`: the raw bytes (a prefix of a sequence may end inside a UTF-8 character).
    pub fn detokenize(&self, tokens: &[Token], skip_special: bool) -> Result<Vec<u8>> {
        let mut n = 0usize;
        let st = unsafe {
            sys::imp_detokenize(self.raw.as_ptr(), tokens.as_ptr(), tokens.len(), skip_special as i32, ptr::null_mut(),
                                0, &mut n)
        };
        if st != sys::IMP_ERR_BUFFER_TOO_SMALL {
            check(st)?;
        }
        let mut buf = vec![0u8; n];
        if n > 0 {
            check(unsafe {
                sys::imp_detokenize(self.raw.as_ptr(), tokens.as_ptr(), tokens.len(), skip_special as i32,
                                    buf.as_mut_ptr() as *mut c_char, n, &mut n)
            })?;
        }
        Ok(buf)
    }

    /// `imp_token_to_piece()`: one token's raw bytes.
    pub fn token_to_piece(&self, token: Token) -> Result<Vec<u8>> {
        let mut n = 0usize;
        let st = unsafe { sys::imp_token_to_piece(self.raw.as_ptr(), token, ptr::null_mut(), 0, &mut n) };
        if st != sys::IMP_ERR_BUFFER_TOO_SMALL {
            check(st)?;
        }
        let mut buf = vec![0u8; n];
        if n > 0 {
            check(unsafe {
                sys::imp_token_to_piece(self.raw.as_ptr(), token, buf.as_mut_ptr() as *mut c_char, n, &mut n)
            })?;
        }
        Ok(buf)
    }

    /// `imp_tokenizer_token_id()`: the id whose text is exactly `text` (Status::NotFound if there is none).
    pub fn token_id(&self, text: &str) -> Result<Token> {
        let c = CString::new(text).map_err(|_| invalid("text holds a NUL byte".into()))?;
        let mut id = -1;
        check(unsafe { sys::imp_tokenizer_token_id(self.raw.as_ptr(), c.as_ptr(), &mut id) })?;
        Ok(id)
    }

    /// `imp_tokenizer_is_special()`.
    pub fn is_special(&self, token: Token) -> bool {
        unsafe { sys::imp_tokenizer_is_special(self.raw.as_ptr(), token) != 0 }
    }

    pub fn as_ptr(&self) -> *mut sys::imp_tokenizer {
        self.raw.as_ptr()
    }
}

impl Drop for Tokenizer {
    fn drop(&mut self) {
        unsafe { sys::imp_tokenizer_free(self.raw.as_ptr()) }
    }
}
