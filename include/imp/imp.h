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
 * Thread safety: a model is immutable after imp_model_load() and may be shared by many contexts on many
 * threads. A context must be used by one thread at a time. imp_last_error() is per thread.
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

/* Loads a Hugging Face model directory (config.json + *.safetensors, single or sharded). Weights are memory
 * mapped and stay in their stored dtype; every tensor's shape is checked against the config.
 * On success *out owns the model: free it with imp_model_free() after every context that uses it.
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_NOT_FOUND, IMP_ERR_MISSING_CONFIG, IMP_ERR_BAD_JSON,
 * IMP_ERR_UNKNOWN_ARCH, IMP_ERR_BAD_CONFIG, IMP_ERR_IO, IMP_ERR_BAD_HEADER, IMP_ERR_BAD_OFFSETS,
 * IMP_ERR_MISSING_TENSOR, IMP_ERR_TENSOR_SHAPE, IMP_ERR_TENSOR_DTYPE, IMP_ERR_INVALID_ARGUMENT (params),
 * IMP_ERR_OUT_OF_MEMORY. On error *out is set to NULL. params may be NULL for the defaults. */
IMP_API imp_status IMP_CALL imp_model_load(imp_model **out, const char *path, const imp_model_params *params);

/* Frees a model. NULL is a no-op. The model must outlive its contexts. */
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

/* Creates a context over model with all its state buffers allocated up front. The context keeps a reference
 * to model, which must not be freed first. Free it with imp_context_free().
 * Returns IMP_OK, IMP_ERR_NULL_ARGUMENT, IMP_ERR_INVALID_ARGUMENT, IMP_ERR_OUT_OF_MEMORY. */
IMP_API imp_status IMP_CALL imp_context_create(imp_context **out, imp_model *model,
                                               const imp_context_params *params);

/* Frees a context. NULL is a no-op. */
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

#ifdef __cplusplus
}
#endif

#endif /* IMP_IMP_H */
