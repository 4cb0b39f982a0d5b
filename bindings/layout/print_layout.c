/*
 * print_layout.c - prints the size and alignment of every public struct of imp.h and the offset and size of each
 * of its fields, as the C compiler lays them out. The C# and Rust binding tests run it and compare their own
 * declarations (Marshal.SizeOf / Marshal.OffsetOf, size_of / offset_of!) line by line.
 *
 * Output, one line each:
 *     struct <name> <sizeof> <alignof>
 *     field <struct>.<field> <offsetof> <sizeof>
 *     const <name> <value>
 */
#include <imp/imp.h>

#include <stddef.h>
#include <stdio.h>

/* alignof without C11: the offset of the member after a char. */
#define ALIGN_OF(type) ((unsigned long)offsetof(struct { char c; type t; }, t))
#define STRUCT(type) printf("struct %s %lu %lu\n", #type, (unsigned long)sizeof(type), ALIGN_OF(type))
#define FIELD(type, field) \
    printf("field %s.%s %lu %lu\n", #type, #field, (unsigned long)offsetof(type, field), \
           (unsigned long)sizeof(((type *)0)->field))

int main(void) {
    STRUCT(imp_model_params);
    FIELD(imp_model_params, size);
    FIELD(imp_model_params, backend);
    FIELD(imp_model_params, device);

    STRUCT(imp_model_info);
    FIELD(imp_model_info, size);
    FIELD(imp_model_info, n_vocab);
    FIELD(imp_model_info, n_embd);
    FIELD(imp_model_info, n_layer);
    FIELD(imp_model_info, n_layer_full);
    FIELD(imp_model_info, n_layer_linear);
    FIELD(imp_model_info, n_expert);
    FIELD(imp_model_info, n_expert_used);
    FIELD(imp_model_info, n_mtp_layer);
    FIELD(imp_model_info, n_ctx_train);
    FIELD(imp_model_info, eos_token);
    FIELD(imp_model_info, arch);

    STRUCT(imp_context_params);
    FIELD(imp_context_params, size);
    FIELD(imp_context_params, n_ctx);
    FIELD(imp_context_params, n_threads);

    STRUCT(imp_sampling_params);
    FIELD(imp_sampling_params, size);
    FIELD(imp_sampling_params, temperature);
    FIELD(imp_sampling_params, top_k);
    FIELD(imp_sampling_params, top_p);
    FIELD(imp_sampling_params, min_p);
    FIELD(imp_sampling_params, seed);

    STRUCT(imp_generate_params);
    FIELD(imp_generate_params, size);
    FIELD(imp_generate_params, max_tokens);
    FIELD(imp_generate_params, n_draft);
    FIELD(imp_generate_params, eos_token);

    STRUCT(imp_stats);
    FIELD(imp_stats, size);
    FIELD(imp_stats, n_drafted);
    FIELD(imp_stats, n_accepted);
    FIELD(imp_stats, n_emitted);
    FIELD(imp_stats, n_verify);
    FIELD(imp_stats, n_main_forward);
    FIELD(imp_stats, n_mtp_forward);
    FIELD(imp_stats, n_prefill_tokens);
    FIELD(imp_stats, t_prefill_ms);
    FIELD(imp_stats, t_prefill_mtp_ms);
    FIELD(imp_stats, t_decode_ms);
    FIELD(imp_stats, t_draft_ms);
    FIELD(imp_stats, t_verify_ms);

    /* The enums travel as C ints; the bindings declare them 4 bytes wide. */
    printf("const sizeof_enum %lu\n", (unsigned long)sizeof(imp_status));
    printf("const IMP_ABI_VERSION %d\n", IMP_ABI_VERSION);
    printf("const IMP_MAX_DRAFT %d\n", IMP_MAX_DRAFT);
    printf("const IMP_DRAFT_AUTO %d\n", IMP_DRAFT_AUTO);
    return 0;
}
