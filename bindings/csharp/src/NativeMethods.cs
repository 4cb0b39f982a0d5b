// NativeMethods.cs - the C ABI of include/imp/imp.h, declaration for declaration, with the C names kept so each
// line can be checked against the header. Handles are SafeHandles (Handles.cs); size_t is UIntPtr; strings in
// are NUL-terminated UTF-8 byte arrays and strings out are const char* read with Utf8.FromNative. Pointer
// parameters stay pointers (unsafe) so callers can pass any part of an array; the Model / Context / Tokenizer
// classes (Imp.cs) wrap them with checks and exceptions.
//
// C# 7.2 subset: builds with Debian's Mono (mcs -unsafe) and with .NET (Imp.csproj, AllowUnsafeBlocks).
using System;
using System.Runtime.InteropServices;

namespace Imp
{
    // ---------------------------------------------------------------------------------------------------------
    // Status codes, enums
    // ---------------------------------------------------------------------------------------------------------

    public enum imp_status : int
    {
        IMP_OK = 0,
        IMP_ERR_INVALID_ARGUMENT = -1,
        IMP_ERR_NULL_ARGUMENT = -2,
        IMP_ERR_OUT_OF_MEMORY = -3,
        IMP_ERR_IO = -4,
        IMP_ERR_NOT_FOUND = -5,
        IMP_ERR_MISSING_CONFIG = -6,
        IMP_ERR_BAD_JSON = -7,
        IMP_ERR_UNKNOWN_ARCH = -8,
        IMP_ERR_BAD_CONFIG = -9,
        IMP_ERR_BAD_HEADER = -10,
        IMP_ERR_BAD_OFFSETS = -11,
        IMP_ERR_MISSING_TENSOR = -12,
        IMP_ERR_TENSOR_SHAPE = -13,
        IMP_ERR_TENSOR_DTYPE = -14,
        IMP_ERR_TOKEN_OUT_OF_RANGE = -15,
        IMP_ERR_CONTEXT_FULL = -16,
        IMP_ERR_BUFFER_TOO_SMALL = -17,
        IMP_ERR_UNSUPPORTED = -18,
        IMP_ERR_BAD_STATE = -19,
        IMP_ERR_BACKEND = -20,
        IMP_ERR_TOKENIZER = -21,
        IMP_ERR_INTERNAL = -99,
    }

    public enum imp_log_level : int
    {
        IMP_LOG_ERROR = 0,
        IMP_LOG_WARN = 1,
        IMP_LOG_INFO = 2,
        IMP_LOG_DEBUG = 3,
    }

    public enum imp_backend : int
    {
        IMP_BACKEND_AUTO = 0,
        IMP_BACKEND_CPU = 1,
        IMP_BACKEND_CUDA = 2,
    }

    public enum imp_logits_mode : int
    {
        IMP_LOGITS_NONE = 0,
        IMP_LOGITS_LAST = 1,
        IMP_LOGITS_ALL = 2,
    }

    public enum imp_stop_reason : int
    {
        IMP_STOP_MAX_TOKENS = 0,
        IMP_STOP_EOS = 1,
        IMP_STOP_CALLBACK = 2,
        IMP_STOP_CONTEXT_FULL = 3,
    }

    // ---------------------------------------------------------------------------------------------------------
    // Structs: same fields, same order; the test compares Marshal.SizeOf / OffsetOf with the C compiler's layout
    // ---------------------------------------------------------------------------------------------------------

    [StructLayout(LayoutKind.Sequential)]
    public struct imp_model_params
    {
        public uint size;     // sizeof(imp_model_params), set by imp_model_default_params()
        public int backend;   // an imp_backend value; default IMP_BACKEND_CPU
        public int device;    // CUDA device ordinal; ignored on the CPU
    }

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct imp_model_info
    {
        public uint size;           // set to Marshal.SizeOf(typeof(imp_model_info)) before the call
        public int n_vocab;
        public int n_embd;
        public int n_layer;
        public int n_layer_full;
        public int n_layer_linear;
        public int n_expert;
        public int n_expert_used;
        public int n_mtp_layer;
        public int n_ctx_train;
        public int eos_token;       // -1 if none
        public fixed byte arch[32]; // NUL-terminated; read it with Model.Arch
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct imp_context_params
    {
        public uint size;     // sizeof(imp_context_params), set by imp_context_default_params()
        public int n_ctx;     // positions; 0 = 4096
        public int n_threads; // 0 = all cores
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct imp_sampling_params
    {
        public uint size;         // sizeof(imp_sampling_params), set by imp_sampling_default_params()
        public float temperature; // 0 = greedy
        public int top_k;         // 0 = off
        public float top_p;       // 1 = off
        public float min_p;       // 0 = off
        public ulong seed;        // 4 bytes of padding before it, as in C
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct imp_generate_params
    {
        public uint size;       // sizeof(imp_generate_params), set by imp_generate_default_params()
        public int max_tokens;  // > 0; default 128
        public int n_draft;     // 0 = plain decoding, at most IMP_MAX_DRAFT, or IMP_DRAFT_AUTO
        public int eos_token;   // -1 = the model's, -2 = never
    }

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct imp_stats
    {
        public uint size;                               // set to Marshal.SizeOf(typeof(imp_stats)) before the call
        public fixed long n_drafted[NativeMethods.IMP_MAX_DRAFT];  // drafts verified at depth i+1
        public fixed long n_accepted[NativeMethods.IMP_MAX_DRAFT]; // of which accepted
        public long n_emitted;
        public long n_verify;
        public long n_main_forward;
        public long n_mtp_forward;
        public long n_prefill_tokens;
        public double t_prefill_ms;
        public double t_prefill_mtp_ms;
        public double t_decode_ms;
        public double t_draft_ms;
        public double t_verify_ms;
    }

    // Receives one log message: message is NUL-terminated UTF-8, valid only during the call (Utf8.FromNative).
    // May run on any thread that calls libimp, one call at a time; must not throw or call libimp. Keep the
    // delegate alive until imp_set_log_callback has replaced it (Library.SetLogCallback does both).
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate void imp_log_callback(imp_log_level level, IntPtr message, IntPtr user_data);

    // Called with each emitted token; return 0 to go on. Keep the delegate alive for the whole imp_generate call.
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate int imp_token_callback(int token, IntPtr user_data);

    // ---------------------------------------------------------------------------------------------------------
    // Functions
    // ---------------------------------------------------------------------------------------------------------

    public static unsafe class NativeMethods
    {
        // libimp.so on Linux, imp.dll on Windows, libimp.dylib on macOS: the runtime adds prefix and suffix.
        public const string Lib = "imp";

        public const int IMP_VERSION_MAJOR = 0;
        public const int IMP_VERSION_MINOR = 1;
        public const int IMP_VERSION_PATCH = 0;
        public const int IMP_ABI_VERSION = 1;
        public const int IMP_MAX_DRAFT = 16;
        public const int IMP_DRAFT_AUTO = -1;  // imp_generate_params.n_draft: adaptive k, 0 included

        // Versions
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern IntPtr imp_version();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern int imp_abi_version();

        // Status codes and errors
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern IntPtr imp_last_error();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern IntPtr imp_status_name(imp_status status);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_set_log_callback(imp_log_callback callback, IntPtr user_data,
                                                             imp_log_level max_level);

        // Models
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_model_params imp_model_default_params();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_model_load(out ModelHandle @out, byte[] path, ref imp_model_params @params);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern void imp_model_free(IntPtr model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_model_get_info(ModelHandle model, ref imp_model_info @out);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern int imp_model_n_vocab(ModelHandle model);

        // Contexts
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_context_params imp_context_default_params();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_context_create(out ContextHandle @out, ModelHandle model,
                                                           ref imp_context_params @params);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern void imp_context_free(IntPtr ctx);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_context_reset(ContextHandle ctx);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern int imp_context_n_past(ContextHandle ctx);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern int imp_context_n_ctx(ContextHandle ctx);

        // Decoding
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_prefill(ContextHandle ctx, int* tokens, int n_tokens, imp_logits_mode mode,
                                                    float* logits, UIntPtr logits_capacity);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_decode(ContextHandle ctx, int token, float* logits, UIntPtr logits_capacity);

        // Sampling
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_sampling_params imp_sampling_default_params();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_context_set_sampling(ContextHandle ctx, ref imp_sampling_params @params);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_sample(ContextHandle ctx, float* logits, out int @out);

        // MTP speculative decoding, step by step
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_mtp_draft(ContextHandle ctx, int last, int n_draft, int* drafts,
                                                      float* draft_probs);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_mtp_verify(ContextHandle ctx, int* drafts, int n_drafts, int* @out,
                                                       int out_capacity, out int n_out, out int n_accepted);

        // Generation
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_generate_params imp_generate_default_params();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_generate(ContextHandle ctx, int* prompt, int n_prompt,
                                                     ref imp_generate_params @params, imp_token_callback callback,
                                                     IntPtr user_data, int* @out, UIntPtr out_capacity,
                                                     out UIntPtr n_out, out imp_stop_reason stop);

        // Statistics
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_context_get_stats(ContextHandle ctx, ref imp_stats @out);

        // Tokenizer
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_tokenizer_load(out TokenizerHandle @out, byte[] path);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern void imp_tokenizer_free(IntPtr tok);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern int imp_tokenizer_n_vocab(TokenizerHandle tok);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_tokenize(TokenizerHandle tok, byte* text, UIntPtr text_len, int parse_special,
                                                     int* tokens, UIntPtr capacity, out UIntPtr n_tokens);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_detokenize(TokenizerHandle tok, int* tokens, UIntPtr n_tokens,
                                                       int skip_special, byte* buf, UIntPtr capacity,
                                                       out UIntPtr n_bytes);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_token_to_piece(TokenizerHandle tok, int token, byte* buf, UIntPtr capacity,
                                                           out UIntPtr n_bytes);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern imp_status imp_tokenizer_token_id(TokenizerHandle tok, byte[] text, out int @out);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern int imp_tokenizer_is_special(TokenizerHandle tok, int token);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        public static extern UIntPtr imp_utf8_incomplete_tail(byte* bytes, UIntPtr n);
    }
}
