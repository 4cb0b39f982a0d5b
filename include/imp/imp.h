/*
 * imp.h - the public C API of libimp, an inference library for Qwen3.5 / Qwen3.6 / Qwen3-Next hybrid models
 * (Gated DeltaNet + gated full attention, dense or MoE) with native multi-token-prediction (MTP) decoding.
 *
 * The header is C89-clean and has no C++ types; every function returns an imp_status (0 = OK, negative =
 * error) unless documented otherwise, and on error imp_last_error() returns a message naming the problem.
 *
 * Usage:
 *
 *     imp_model *model = NULL;
 *     imp_context *ctx = NULL;
 *     imp_model_params mp = imp_model_default_params();
 *     imp_context_params cp = imp_context_default_params();
 *     float *logits;
 *     imp_token prompt[3] = {1, 2, 3};
 *     if (imp_model_load(&model, "models/imp-demo", &mp) != IMP_OK) {
 *         fprintf(stderr, "%s\n", imp_last_error());
 *         return 1;
 *     }
 *     imp_context_create(&ctx, model, &cp);
 *     logits = malloc(sizeof(float) * imp_model_n_vocab(model));
 *     imp_prefill(ctx, prompt, 3, IMP_LOGITS_LAST, logits, imp_model_n_vocab(model));
 *     ...
 *     imp_context_free(ctx);
 *     imp_model_free(model);
 *
 * Thread safety:
 *   - A model is immutable after imp_model_load() returns and may be shared by any number of contexts on any
 *     number of threads at once. A context keeps its model alive: imp_model_free() on a model that contexts
 *     still use only releases the caller's reference, and the last imp_context_free() frees it.
 *   - Handles are checked: a call with a model or context that was freed already (or that libimp never made)
 *     returns IMP_ERR_INVALID_ARGUMENT (the -1 of the int32_t getters), and freeing one twice is a no-op.
 *   - A context is used by one thread at a time: calls on the same context must not overlap (the caller
 *     serialises them, e.g. one context per thread). It may move between threads between calls. Different
 *     contexts, even over one model, run fully in parallel.
 *   - A tokenizer is immutable after imp_tokenizer_load() and may be used by many threads at once.
 *   - imp_last_error() is per thread: it reports the calling thread's last libimp call.
 *   - imp_set_log_callback() is process-wide and may be called from any thread at any time.
 *
 * Callbacks (imp_token_callback, imp_log_callback) use the IMP_CALL calling convention: __cdecl on Windows,
 * the platform's C convention elsewhere. Define them with it, e.g.
 *
 *     static void IMP_CALL on_log(imp_log_level level, const char *message, void *user_data) { ... }
 *
 * libimp calls a callback on the thread that made the libimp call it belongs to, so a log callback may run on
 * any thread that calls into libimp, on several threads one after another (never two at once). A callback
 * must return normally (no C++ exception or longjmp may cross libimp) and must not call libimp on the object
 * it was invoked for: a token callback must not use its context, a log callback must not call libimp at all.
 */
#ifndef IMP_IMP_H
#define IMP_IMP_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(IMP_BUILDING_LIBRARY)
#    define IMP_API __declspec(dllexport)
#  elif defined(IMP_STATIC)
#    define IMP_API
#  else
#    define IMP_API __declspec(dllimport)
#  endif
#  define IMP_CALL __cdecl
#else
#  if defined(IMP_BUILDING_LIBRARY) && defined(__GNUC__)
#    define IMP_API __attribute__((visibility("default")))
#  else
#    define IMP_API
#  endif
#  define IMP_CALL
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------------------
 * Versions
 * ---------------------------------------------------------------------------------------------------------- */

#define IMP_VERSION_MAJOR 0
#define IMP_VERSION_MINOR 1
#define IMP_VERSION_PATCH 0
/* Bumped whenever the ABI changes incompatibly; compare with imp_abi_version() at run time. */
#define IMP_ABI_VERSION 1

/* The library's version, "MAJOR.MINOR.PATCH". Static storage; never NULL. */
IMP_API const char *IMP_CALL imp_version(void);
/* The ABI version the library was built with (IMP_ABI_VERSION of its header). */
IMP_API int32_t IMP_CALL imp_abi_version(void);

/* ------------------------------------------------------------------------------------------------------------
 * Status codes and errors
 * ---------------------------------------------------------------------------------------------------------- */

typedef enum imp_status {
    IMP_OK = 0,
    IMP_ERR_INVALID_ARGUMENT = -1,   /**< an argument is outside its documented range */
    IMP_ERR_NULL_ARGUMENT = -2,      /**< a required handle or pointer is NULL */
    IMP_ERR_OUT_OF_MEMORY = -3,      /**< an allocation failed */
    IMP_ERR_IO = -4,                 /**< a file exists but could not be opened, mapped or read */
    IMP_ERR_NOT_FOUND = -5,          /**< the model path does not exist or is not a directory */
    IMP_ERR_MISSING_CONFIG = -6,     /**< the model directory has no config.json */
    IMP_ERR_BAD_JSON = -7,           /**< a JSON file is malformed */
    IMP_ERR_UNKNOWN_ARCH = -8,       /**< config.json names a model_type libimp does not run */
    IMP_ERR_BAD_CONFIG = -9,         /**< a config field is missing, of the wrong type or inconsistent */
    IMP_ERR_BAD_HEADER = -10,        /**< a weight file's header is truncated or malformed */
    IMP_ERR_BAD_OFFSETS = -11,       /**< a tensor's data lies outside its file, or overlaps another */
    IMP_ERR_MISSING_TENSOR = -12,    /**< a tensor the config requires is not in the weight files */
    IMP_ERR_TENSOR_SHAPE = -13,      /**< a tensor's shape disagrees with the config */
    IMP_ERR_TENSOR_DTYPE = -14,      /**< a tensor's dtype is not one libimp reads (BF16, F16, F32) */
    IMP_ERR_TOKEN_OUT_OF_RANGE = -15,/**< a token id is < 0 or >= the vocabulary size */
    IMP_ERR_CONTEXT_FULL = -16,      /**< the tokens do not fit in the context's remaining positions */
    IMP_ERR_BUFFER_TOO_SMALL = -17,  /**< an output buffer's capacity is below what the call must write */
    IMP_ERR_UNSUPPORTED = -18,       /**< the model or backend lacks the feature (e.g. no MTP head) */
    IMP_ERR_BAD_STATE = -19,         /**< the call is out of order (e.g. verify without a draft) */
    IMP_ERR_BACKEND = -20,           /**< the compute backend failed (message carries its own text) */
    IMP_ERR_TOKENIZER = -21,         /**< a tokenizer file is missing or malformed */
    IMP_ERR_INTERNAL = -99           /**< a bug in libimp; please report the message */
} imp_status;

/* The message of the last error on the calling thread, or "" when the last call succeeded. The pointer stays
 * valid until the next libimp call on this thread. Never NULL. */
IMP_API const char *IMP_CALL imp_last_error(void);
/* A short fixed name for a status code ("IMP_ERR_NOT_FOUND"). Never NULL. */
IMP_API const char *IMP_CALL imp_status_name(imp_status status);

/* Log levels, most severe first. The values are fixed; a threshold lets a level and everything above through. */
typedef enum imp_log_level {
    IMP_LOG_ERROR = 0, /**< a call failed, with more context than imp_last_error() has room for */
    IMP_LOG_WARN = 1,  /**< libimp went on, but not quite as asked (a fallback, a clamped value) */
    IMP_LOG_INFO = 2,  /**< a few lines per significant event (a model loaded, a context created) */
    IMP_LOG_DEBUG = 3  /**< details for developing libimp; may be many lines per call */
} imp_log_level;

/* Receives one message: its level, the text (UTF-8, NUL-terminated, no trailing newline, valid only during the
 * call) and the user_data given to imp_set_log_callback(). Runs on the thread that called into libimp; calls are
 * serialised (never two at once). See "Callbacks" at the top of this file. */
typedef void (IMP_CALL *imp_log_callback)(imp_log_level level, const char *message, void *user_data);

/* Sends libimp's messages of level <= max_level, from every model and context of the process, to callback.
 * callback NULL turns logging off, which is the default: libimp never writes to stdout or stderr itself. When
 * this returns, the previous callback is not running and will not be called again, so its user_data may be
 * freed. Returns IMP_OK, IMP_ERR_INVALID_ARGUMENT (max_level outside IMP_LOG_ERROR .. IMP_LOG_DEBUG; nothing
 * changes), IMP_ERR_BAD_STATE (called from inside a log callback; nothing changes). */
IMP_API imp_status IMP_CALL imp_set_log_callback(imp_log_callback callback, void *user_data,
                                                 imp_log_level max_level);

/* ------------------------------------------------------------------------------------------------------------
 * Models
 * ---------------------------------------------------------------------------------------------------------- */

typedef int32_t imp_token;
typedef struct imp_model imp_model;     /* opaque: loaded weights and config, immutable, shareable */
typedef struct imp_context imp_context; /* opaque: one sequence's state (KV cache, recurrent state) */

typedef enum imp_backend {
    IMP_BACKEND_AUTO = 0, /**< CUDA when built in and a device is present, otherwise CPU */
    IMP_BACKEND_CPU = 1,
    IMP_BACKEND_CUDA = 2
} imp_backend;

typedef struct imp_model_params {
    uint32_t size;       /**< sizeof(imp_model_params), set by imp_model_default_params() */
    int32_t backend;     /**< an imp_backend value; default IMP_BACKEND_CPU */
    int32_t device;      /**< CUDA device ordinal; ignored on the CPU; default 0 */
} imp_model_params;

IMP_API imp_model_params IMP_CALL imp_model_default_params(void);

/* Loads a model: a Hugging Face model directory (config.json + *.safetensors, single or sharded) or a GGUF file
 * as llama.cpp writes it (qwen35, qwen35moe, qwen3next; F32, F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K; NextN tensors
 * become the MTP head). Weights are memory mapped and stay in their stored type; every tensor's shape is
 * checked against the config. The backend runs the model: IMP_BACKEND_CUDA uploads the weights once per device
 * (shared by the model's contexts), quantized GGUF weights included, in their blocks.
 * On success *out owns the model: free it with imp_model_free() after every context that uses it.
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_NOT_FOUND, IMP_ERR_MISSING_CONFIG, IMP_ERR_BAD_JSON,
 * IMP_ERR_UNKNOWN_ARCH, IMP_ERR_BAD_CONFIG, IMP_ERR_IO, IMP_ERR_BAD_HEADER, IMP_ERR_BAD_OFFSETS,
 * IMP_ERR_MISSING_TENSOR, IMP_ERR_TENSOR_SHAPE, IMP_ERR_TENSOR_DTYPE, IMP_ERR_INVALID_ARGUMENT (params),
 * IMP_ERR_UNSUPPORTED (IMP_BACKEND_CUDA in a build without it, or weights it cannot run), IMP_ERR_BACKEND (no
 * CUDA device, or a CUDA failure; the message carries CUDA's text), IMP_ERR_OUT_OF_MEMORY. On error *out is set
 * to NULL. params may be NULL for the defaults. */
IMP_API imp_status IMP_CALL imp_model_load(imp_model **out, const char *path, const imp_model_params *params);

/* Releases the caller's model. NULL, or a model freed already, is a no-op. Contexts still using the model keep
 * it alive; it is freed with the last of them. The handle must not be used again by the caller. */
IMP_API void IMP_CALL imp_model_free(imp_model *model);

typedef struct imp_model_info {
    uint32_t size;            /**< set to sizeof(imp_model_info) by the caller before the call */
    int32_t n_vocab;          /**< rows of the embedding / lm_head */
    int32_t n_embd;           /**< hidden size H */
    int32_t n_layer;          /**< decoder layers of the main model */
    int32_t n_layer_full;     /**< of which gated full-attention layers */
    int32_t n_layer_linear;   /**< of which Gated DeltaNet layers */
    int32_t n_expert;         /**< routed experts per MoE layer, 0 for a dense model */
    int32_t n_expert_used;    /**< experts chosen per token, 0 for a dense model */
    int32_t n_mtp_layer;      /**< MTP (NextN) layers present in the weights, 0 if none */
    int32_t n_ctx_train;      /**< max_position_embeddings from the config */
    int32_t eos_token;        /**< eos_token_id of config.json / generation_config.json, -1 if none */
    char arch[32];            /**< "qwen3_5", "qwen3_5_moe" or "qwen3_next", NUL-terminated */
} imp_model_info;

/* Fills *out. out->size must be set; fields past it are not written. Returns IMP_OK, IMP_ERR_NULL_ARGUMENT or
 * IMP_ERR_INVALID_ARGUMENT (size too small for the first fields). */
IMP_API imp_status IMP_CALL imp_model_get_info(const imp_model *model, imp_model_info *out);

/* The vocabulary size, or -1 if model is NULL. */
IMP_API int32_t IMP_CALL imp_model_n_vocab(const imp_model *model);

/* ------------------------------------------------------------------------------------------------------------
 * Contexts
 * ---------------------------------------------------------------------------------------------------------- */

typedef struct imp_context_params {
    uint32_t size;      /**< sizeof(imp_context_params), set by imp_context_default_params() */
    int32_t n_ctx;      /**< positions the context holds (prompt + generated); 0 = 4096; default 0 */
    int32_t n_threads;  /**< CPU worker threads; 0 = all cores; default 0 */
} imp_context_params;

IMP_API imp_context_params IMP_CALL imp_context_default_params(void);

/* Creates a context over model with all its state buffers allocated up front. The context keeps model alive
 * until it is freed itself. Free it with imp_context_free().
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_INVALID_ARGUMENT (params, or a model already freed),
 * IMP_ERR_OUT_OF_MEMORY, IMP_ERR_BACKEND (CUDA could not allocate the context's buffers). */
IMP_API imp_status IMP_CALL imp_context_create(imp_context **out, imp_model *model,
                                               const imp_context_params *params);

/* Frees a context (and its model, if the model was released and this was its last context). NULL, or a
 * context freed already, is a no-op. */
IMP_API void IMP_CALL imp_context_free(imp_context *ctx);

/* Forgets the sequence: position 0, empty caches and recurrent states. Returns IMP_OK or IMP_ERR_NULL_ARGUMENT. */
IMP_API imp_status IMP_CALL imp_context_reset(imp_context *ctx);

/* Tokens the context holds (the next position), or -1 if ctx is NULL. */
IMP_API int32_t IMP_CALL imp_context_n_past(const imp_context *ctx);

/* Positions the context can hold in all, or -1 if ctx is NULL. */
IMP_API int32_t IMP_CALL imp_context_n_ctx(const imp_context *ctx);

/* ------------------------------------------------------------------------------------------------------------
 * Decoding
 * ---------------------------------------------------------------------------------------------------------- */

typedef enum imp_logits_mode {
    IMP_LOGITS_NONE = 0, /**< write no logits */
    IMP_LOGITS_LAST = 1, /**< the last row's logits: n_vocab floats */
    IMP_LOGITS_ALL = 2   /**< every row's logits, row-major: n_tokens * n_vocab floats */
} imp_logits_mode;

/* Appends n_tokens tokens to the sequence in one batched forward pass, at positions n_past .. n_past+n_tokens-1.
 * Prompts may be prefilled in several chunks. logits may be NULL only with IMP_LOGITS_NONE; logits_capacity is
 * its size in floats.
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_INVALID_ARGUMENT (n_tokens <= 0 or a bad mode),
 * IMP_ERR_TOKEN_OUT_OF_RANGE, IMP_ERR_CONTEXT_FULL, IMP_ERR_BUFFER_TOO_SMALL. Every check runs before any state
 * changes: on error the context is as it was. */
IMP_API imp_status IMP_CALL imp_prefill(imp_context *ctx, const imp_token *tokens, int32_t n_tokens,
                                        imp_logits_mode mode, float *logits, size_t logits_capacity);

/* One token: the same as imp_prefill(ctx, &token, 1, IMP_LOGITS_LAST, logits, logits_capacity), with logits
 * allowed to be NULL. */
IMP_API imp_status IMP_CALL imp_decode(imp_context *ctx, imp_token token, float *logits, size_t logits_capacity);

/* ------------------------------------------------------------------------------------------------------------
 * Sampling
 * ---------------------------------------------------------------------------------------------------------- */

typedef struct imp_sampling_params {
    uint32_t size;       /**< sizeof(imp_sampling_params), set by imp_sampling_default_params() */
    float temperature;   /**< 0 = greedy (argmax, ties to the lowest id); default 0 */
    int32_t top_k;       /**< keep the k most likely tokens; 0 = off; default 0 */
    float top_p;         /**< keep the smallest set with probability >= top_p; 1 = off; default 1 */
    float min_p;         /**< keep tokens with p >= min_p * p_max; 0 = off; default 0 */
    uint64_t seed;       /**< seed of the context's random stream; default 0 */
} imp_sampling_params;

IMP_API imp_sampling_params IMP_CALL imp_sampling_default_params(void);

/* Sets the context's sampler: temperature first, then top-k, top-p and min-p on the tempered distribution. The
 * random stream restarts from seed (and again at imp_context_reset). Speculative decoding uses the same sampler
 * for drafts and verification, so its output has the distribution of plain sampling with these params. On the
 * CUDA backend, decode, draft and verify steps sample on the GPU from the same random draws (only token ids
 * cross the bus): the tokens equal the CPU sampler's except where a draw falls within rounding of a boundary.
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_INVALID_ARGUMENT (size, negative temperature or top_k,
 * top_p outside (0, 1], min_p outside [0, 1]). */
IMP_API imp_status IMP_CALL imp_context_set_sampling(imp_context *ctx, const imp_sampling_params *params);

/* Draws a token from logits (n_vocab floats) with the context's sampler. */
IMP_API imp_status IMP_CALL imp_sample(imp_context *ctx, const float *logits, imp_token *out);

/* ------------------------------------------------------------------------------------------------------------
 * MTP speculative decoding, step by step
 *
 *     imp_prefill(ctx, prompt, n, IMP_LOGITS_LAST, logits, n_vocab);   (also fills the MTP head's cache)
 *     imp_sample(ctx, logits, &last);                                  (emit last)
 *     loop:
 *         imp_mtp_draft(ctx, last, k, drafts, NULL);
 *         imp_mtp_verify(ctx, drafts, k, out, k + 1, &n_out, &n_accepted);
 *         (emit out[0 .. n_out-1]); last = out[n_out - 1];
 *     imp_context_reset(ctx);
 *
 * `last` is always the newest token, sampled but not yet fed to the model. Verification keeps the output
 * exactly that of plain decoding: token for token when greedy, in distribution when sampling.
 * ---------------------------------------------------------------------------------------------------------- */

#define IMP_MAX_DRAFT 16

/* Drafts n_draft tokens with the model's MTP head following `last`, and remembers them for imp_mtp_verify.
 * drafts receives n_draft ids; draft_probs (may be NULL) receives each draft's probability under the draft
 * distribution (1 when greedy).
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_UNSUPPORTED (the model has no MTP head),
 * IMP_ERR_INVALID_ARGUMENT (n_draft outside [1, IMP_MAX_DRAFT]), IMP_ERR_TOKEN_OUT_OF_RANGE (last),
 * IMP_ERR_BAD_STATE (nothing prefilled yet), IMP_ERR_CONTEXT_FULL (fewer than n_draft + 1 positions left).
 * On error the context is unchanged. */
IMP_API imp_status IMP_CALL imp_mtp_draft(imp_context *ctx, imp_token last, int32_t n_draft, imp_token *drafts,
                                          float *draft_probs);

/* Feeds [last, drafts[0..n_drafts-1]] to the model in one batched forward, accepts the longest valid prefix of
 * the drafts and appends one token from the model (the correction, or the bonus token when all were accepted).
 * out receives the accepted drafts followed by that token (*n_out = *n_accepted + 1; out_capacity must be at
 * least n_drafts + 1). The state is rolled back past the accepted tokens; the last token of out is the new
 * `last` (not yet fed). n_drafts may be less than the drafted count (a prefix); 0 is plain decoding.
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_BAD_STATE (no imp_mtp_draft since the last forward),
 * IMP_ERR_INVALID_ARGUMENT (n_drafts < 0 or above the drafted count), IMP_ERR_TOKEN_OUT_OF_RANGE (a draft id),
 * IMP_ERR_BUFFER_TOO_SMALL, IMP_ERR_CONTEXT_FULL. On error the context is unchanged and the draft still stands. */
IMP_API imp_status IMP_CALL imp_mtp_verify(imp_context *ctx, const imp_token *drafts, int32_t n_drafts,
                                           imp_token *out, int32_t out_capacity, int32_t *n_out,
                                           int32_t *n_accepted);

/* ------------------------------------------------------------------------------------------------------------
 * Generation
 * ---------------------------------------------------------------------------------------------------------- */

/* Called with each emitted token, in order. Return 0 to go on, anything else to stop generation. */
typedef int32_t (IMP_CALL *imp_token_callback)(imp_token token, void *user_data);

typedef enum imp_stop_reason {
    IMP_STOP_MAX_TOKENS = 0,   /**< max_tokens were emitted */
    IMP_STOP_EOS = 1,          /**< the end-of-sequence token was emitted (it is included) */
    IMP_STOP_CALLBACK = 2,     /**< the callback returned non-zero */
    IMP_STOP_CONTEXT_FULL = 3  /**< the context ran out of positions */
} imp_stop_reason;

/* n_draft = IMP_DRAFT_AUTO: before every step choose k in 0..8 (0 = plain decoding) to maximise the expected
 * tokens per second, from this call's measured acceptance per depth and the measured cost of a decode step, a
 * draft step and a verify of k drafts. Output stays exact (greedy) or distributed as plain sampling; with
 * temperature > 0 the random stream then depends on timings. */
#define IMP_DRAFT_AUTO (-1)

typedef struct imp_generate_params {
    uint32_t size;         /**< sizeof(imp_generate_params), set by imp_generate_default_params() */
    int32_t max_tokens;    /**< tokens to emit at most (> 0); default 128 */
    int32_t n_draft;       /**< MTP drafts per step, 0 = plain decoding, at most IMP_MAX_DRAFT, or IMP_DRAFT_AUTO;
                                default 0 */
    imp_token eos_token;   /**< stop after this token; -1 = the model's eos_token_id, -2 = never; default -1 */
} imp_generate_params;

IMP_API imp_generate_params IMP_CALL imp_generate_default_params(void);

/* Prefills the prompt, then emits tokens with the context's sampler, drafting with the MTP head when
 * n_draft > 0: exactly the calls of the step-by-step loop above (so a program that drives that loop by hand
 * emits the same tokens). callback (may be NULL) sees each token; out (may be NULL) receives up to out_capacity
 * of them; *n_out (may be NULL) the number emitted; *stop (may be NULL) why it stopped.
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_INVALID_ARGUMENT, IMP_ERR_TOKEN_OUT_OF_RANGE,
 * IMP_ERR_CONTEXT_FULL (the prompt itself does not fit), IMP_ERR_UNSUPPORTED (n_draft > 0 without an MTP head),
 * IMP_ERR_BUFFER_TOO_SMALL is never returned: tokens past out_capacity are counted but not stored. */
IMP_API imp_status IMP_CALL imp_generate(imp_context *ctx, const imp_token *prompt, int32_t n_prompt,
                                         const imp_generate_params *params, imp_token_callback callback,
                                         void *user_data, imp_token *out, size_t out_capacity, size_t *n_out,
                                         imp_stop_reason *stop);

/* ------------------------------------------------------------------------------------------------------------
 * Statistics
 * ---------------------------------------------------------------------------------------------------------- */

typedef struct imp_stats {
    uint32_t size;                       /**< set to sizeof(imp_stats) by the caller */
    int64_t n_drafted[IMP_MAX_DRAFT];    /**< drafts verified at depth i+1 */
    int64_t n_accepted[IMP_MAX_DRAFT];   /**< of which accepted */
    int64_t n_emitted;                   /**< tokens emitted by imp_mtp_verify */
    int64_t n_verify;                    /**< imp_mtp_verify calls */
    int64_t n_main_forward;              /**< main-model forward calls (prefill, decode, verify) */
    int64_t n_mtp_forward;               /**< MTP-head forward calls (prefill batches and draft steps) */
    int64_t n_prefill_tokens;            /**< tokens prefilled in batches of more than one */
    double t_prefill_ms;                 /**< main-model prefill time */
    double t_prefill_mtp_ms;             /**< MTP-head prefill time (part of imp_prefill) */
    double t_decode_ms;                  /**< single-token decode time */
    double t_draft_ms;                   /**< imp_mtp_draft time */
    double t_verify_ms;                  /**< imp_mtp_verify time */
} imp_stats;

/* Statistics since the context was created or reset. out->size must be set. */
IMP_API imp_status IMP_CALL imp_context_get_stats(const imp_context *ctx, imp_stats *out);

/* ------------------------------------------------------------------------------------------------------------
 * Tokenizer
 *
 * A Hugging Face byte-level BPE tokenizer (tokenizer.json as Qwen2 / Qwen3 / Qwen3.5 ship it): NFC normalizer,
 * Qwen's or GPT-2's pre-tokenizer regex, ByteLevel mapping and decoder, added tokens. Ids equal those of
 * Hugging Face tokenizers' encode(text, add_special_tokens=False): no template tokens are added. Text is UTF-8
 * with an explicit length (it may hold NUL bytes); output text is raw bytes with no NUL terminator.
 * A tokenizer is immutable after loading and may be used from many threads at once.
 * ---------------------------------------------------------------------------------------------------------- */

typedef struct imp_tokenizer imp_tokenizer; /* opaque: a loaded tokenizer, immutable, shareable */

/* Loads path: a tokenizer.json file, a directory holding one (a model directory), or a GGUF file whose
 * tokenizer.ggml.* metadata describes a byte-level BPE ("gpt2" model, "qwen2" pre-tokenizer; normalised to NFC
 * as the Hugging Face tokenizer of the same vocabulary does). On success *out owns the tokenizer: free it with
 * imp_tokenizer_free(). On error *out is set to NULL (when out is not NULL).
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT (out or path), IMP_ERR_NOT_FOUND (path does not exist), IMP_ERR_IO,
 * IMP_ERR_BAD_HEADER (a malformed GGUF file), IMP_ERR_TOKENIZER (a directory without tokenizer.json, invalid
 * JSON, a missing or malformed field, or a feature libimp does not implement; the message starts with the file's
 * path), IMP_ERR_OUT_OF_MEMORY. */
IMP_API imp_status IMP_CALL imp_tokenizer_load(imp_tokenizer **out, const char *path);

/* Frees a tokenizer. NULL is a no-op. */
IMP_API void IMP_CALL imp_tokenizer_free(imp_tokenizer *tok);

/* Token ids run from 0 to this count - 1 (the vocabulary and the added tokens), or -1 if tok is NULL. A model's
 * embedding may have more rows than this. */
IMP_API int32_t IMP_CALL imp_tokenizer_n_vocab(const imp_tokenizer *tok);

/* Tokenizes text_len bytes of UTF-8 text. Added tokens that are not special (e.g. "<think>") are always
 * recognised; special ones (e.g. "<|im_start|>") only when parse_special is nonzero, and are otherwise split like
 * ordinary text. *n_tokens receives the number of ids the text makes; they are written to tokens only when they
 * all fit in capacity. text may be NULL when text_len is 0; tokens may be NULL when capacity is 0 (a size query).
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT (tok, n_tokens, or text / tokens as above), IMP_ERR_INVALID_ARGUMENT
 * (text is not valid UTF-8: nothing is guessed or replaced; *n_tokens is set to 0),
 * IMP_ERR_BUFFER_TOO_SMALL (capacity < *n_tokens; tokens is left untouched), IMP_ERR_OUT_OF_MEMORY. */
IMP_API imp_status IMP_CALL imp_tokenize(const imp_tokenizer *tok, const char *text, size_t text_len,
                                         int32_t parse_special, imp_token *tokens, size_t capacity,
                                         size_t *n_tokens);

/* Writes the bytes of n_tokens ids, concatenated, to buf; special added tokens are left out when skip_special
 * is nonzero. *n_bytes receives the byte count; buf is written only when it fits in capacity (no NUL is
 * appended). The bytes are those that were encoded (after NFC); a prefix of a sequence may end inside a UTF-8
 * character (see imp_utf8_incomplete_tail() for streaming). tokens may be NULL when n_tokens is 0, buf when
 * capacity is 0. Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_TOKEN_OUT_OF_RANGE (an id < 0 or >=
 * imp_tokenizer_n_vocab(); *n_bytes is set to 0), IMP_ERR_BUFFER_TOO_SMALL (buf is left untouched),
 * IMP_ERR_OUT_OF_MEMORY. */
IMP_API imp_status IMP_CALL imp_detokenize(const imp_tokenizer *tok, const imp_token *tokens, size_t n_tokens,
                                           int32_t skip_special, char *buf, size_t capacity, size_t *n_bytes);

/* The raw bytes of one token (a vocabulary token's bytes, which may be part of a UTF-8 character only, or an
 * added token's content), with the same buffer convention as imp_detokenize(); an id without a token gives 0
 * bytes. Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_TOKEN_OUT_OF_RANGE, IMP_ERR_BUFFER_TOO_SMALL. */
IMP_API imp_status IMP_CALL imp_token_to_piece(const imp_tokenizer *tok, imp_token token, char *buf,
                                               size_t capacity, size_t *n_bytes);

/* The id of the single token whose text is exactly the NUL-terminated text: an added token's content (e.g.
 * "<|im_end|>", "<|endoftext|>") or a vocabulary token's bytes. Returns IMP_OK, IMP_ERR_NULL_ARGUMENT,
 * IMP_ERR_NOT_FOUND (no such token; *out is set to -1). */
IMP_API imp_status IMP_CALL imp_tokenizer_token_id(const imp_tokenizer *tok, const char *text, imp_token *out);

/* 1 if token is a special added token, 0 if not (or out of range, or tok is NULL). */
IMP_API int32_t IMP_CALL imp_tokenizer_is_special(const imp_tokenizer *tok, imp_token token);

/* For streaming output: how many bytes (0 to 3) at the end of bytes[0..n) are the start of a UTF-8 character
 * that is not complete yet. Print the rest and keep these until the next piece arrives; bytes that can never
 * complete are not counted, so nothing is held forever. bytes may be NULL when n is 0. */
IMP_API size_t IMP_CALL imp_utf8_incomplete_tail(const char *bytes, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* IMP_IMP_H */
