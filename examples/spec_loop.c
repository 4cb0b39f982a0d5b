/* spec_loop: MTP speculative decoding driven by hand, call by call, as imp.h's "step by step" section shows:
 *
 *     imp_prefill -> imp_sample -> (imp_mtp_draft -> imp_mtp_verify)* -> imp_context_reset
 *
 * It prints the acceptance at each draft depth, then runs imp_generate with the same sampling params on the
 * reset context and checks that both emitted the same tokens (imp_generate is documented to make exactly these
 * calls). Exit status 0 when they agree.
 *
 *     spec_loop models/imp-demo -p "The capital of France" -n 48 -k 4 --temp 0.8 --seed 7 */
#include "common.h"

#define MAX_OUT 4096

typedef struct emitter {
    imp_token *tokens;
    int32_t n, max;
    imp_token eos;
} emitter;

/* Records a token; returns 0 once generation must end (max tokens or end of sequence), like imp_generate. */
static int emit(emitter *e, imp_token t) {
    e->tokens[e->n++] = t;
    if (t == e->eos) return 0;
    return e->n < e->max;
}

int main(int argc, char **argv) {
    example_options o;
    imp_model *model;
    imp_context *ctx;
    imp_tokenizer *tok;
    imp_model_info info;
    imp_token prompt[EXAMPLE_MAX_PROMPT], manual[MAX_OUT], generated[MAX_OUT];
    imp_token drafts[IMP_MAX_DRAFT], out[IMP_MAX_DRAFT + 1], last;
    int32_t n_prompt = 0, n_vocab, i, n_out, n_accepted, go = 1, steps = 0;
    int64_t drafted[IMP_MAX_DRAFT], accepted[IMP_MAX_DRAFT], total_drafted = 0, total_accepted = 0;
    float *logits = NULL;
    imp_generate_params gp = imp_generate_default_params();
    size_t n_generated = 0;
    emitter e;
    int rc = 1;

    if (example_parse(argc, argv, &o, 3)) return 2;
    if (o.n_predict > MAX_OUT || o.n_draft < 1 || o.n_draft > IMP_MAX_DRAFT) {
        fprintf(stderr, "-n must be <= %d and -k in [1, %d]\n", MAX_OUT, IMP_MAX_DRAFT);
        return 2;
    }
    if (example_load(&o, &model, &ctx, &tok)) goto done;
    if (example_prompt(&o, tok, prompt, &n_prompt)) goto done;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    imp_model_get_info(model, &info);
    n_vocab = imp_model_n_vocab(model);
    logits = (float *)malloc(sizeof(float) * (size_t)n_vocab);
    if (!logits) goto done;
    memset(drafted, 0, sizeof drafted);
    memset(accepted, 0, sizeof accepted);
    e.tokens = manual;
    e.n = 0;
    e.max = o.n_predict;
    e.eos = info.eos_token;

    /* The prompt in one batch; the MTP head's cache is filled on the way. `last` is sampled, not yet fed. */
    if (imp_prefill(ctx, prompt, n_prompt, IMP_LOGITS_LAST, logits, (size_t)n_vocab) != IMP_OK ||
        imp_sample(ctx, logits, &last) != IMP_OK) {
        fprintf(stderr, "prefill: %s\n", imp_last_error());
        goto done;
    }
    go = emit(&e, last);
    while (go) {
        int32_t room = imp_context_n_ctx(ctx) - imp_context_n_past(ctx);
        int32_t k = o.n_draft < room - 1 ? o.n_draft : room - 1;
        if (room < 1) break; /* context full */
        if (k > 0) {
            /* Draft k tokens after `last`, then verify [last, drafts] in one forward: the accepted drafts plus
             * one token from the model come back, and the state is rolled back past the rejected ones. */
            if (imp_mtp_draft(ctx, last, k, drafts, NULL) != IMP_OK ||
                imp_mtp_verify(ctx, drafts, k, out, k + 1, &n_out, &n_accepted) != IMP_OK) {
                fprintf(stderr, "step %d: %s\n", (int)steps, imp_last_error());
                goto done;
            }
            for (i = 0; i < k; ++i) drafted[i]++;
            for (i = 0; i < n_accepted; ++i) accepted[i]++;
            for (i = 0; i < n_out && go; ++i) go = emit(&e, out[i]);
            last = out[n_out - 1];
        } else {
            /* One position left: plain decoding. */
            if (imp_decode(ctx, last, logits, (size_t)n_vocab) != IMP_OK || imp_sample(ctx, logits, &last) != IMP_OK) {
                fprintf(stderr, "decode: %s\n", imp_last_error());
                goto done;
            }
            go = emit(&e, last);
        }
        steps++;
    }

    printf("manual loop: %d tokens in %d verify steps (%.2f tokens per step)\n", (int)e.n, (int)steps,
           steps ? (double)(e.n - 1) / steps : 0.0);
    for (i = 0; i < o.n_draft; ++i) {
        printf("  depth %d: %lld / %lld accepted (%.1f%%)\n", (int)i + 1, (long long)accepted[i],
               (long long)drafted[i], drafted[i] ? 100.0 * (double)accepted[i] / (double)drafted[i] : 0.0);
        total_drafted += drafted[i];
        total_accepted += accepted[i];
    }
    printf("  all: %lld / %lld drafts accepted\n", (long long)total_accepted, (long long)total_drafted);

    /* The same on a fresh sequence through imp_generate. reset restarts the sampler's stream from its seed. */
    if (imp_context_reset(ctx) != IMP_OK) goto done;
    gp.max_tokens = o.n_predict;
    gp.n_draft = o.n_draft;
    gp.eos_token = -1; /* the model's, as the loop above used */
    if (imp_generate(ctx, prompt, n_prompt, &gp, NULL, NULL, generated, MAX_OUT, &n_generated, NULL) != IMP_OK) {
        fprintf(stderr, "imp_generate: %s\n", imp_last_error());
        goto done;
    }
    if ((int32_t)n_generated != e.n) {
        fprintf(stderr, "MISMATCH: the loop emitted %d tokens, imp_generate %d\n", (int)e.n, (int)n_generated);
        goto done;
    }
    for (i = 0; i < e.n; ++i) {
        if (manual[i] != generated[i]) {
            fprintf(stderr, "MISMATCH at token %d: loop %d, imp_generate %d\n", (int)i, (int)manual[i],
                    (int)generated[i]);
            goto done;
        }
    }
    printf("imp_generate emitted the same %d tokens:", (int)e.n);
    for (i = 0; i < e.n && i < 16; ++i) printf(" %d", (int)manual[i]);
    printf("%s\n", e.n > 16 ? " ..." : "");
    if (tok) {
        char text[8192];
        size_t n_bytes = 0;
        if (imp_detokenize(tok, manual, (size_t)e.n, 0, text, sizeof text - 1, &n_bytes) == IMP_OK) {
            text[n_bytes] = '\0';
            printf("text: %s\n", text);
        }
    }
    rc = 0;

done:
    free(logits);
    imp_tokenizer_free(tok);
    imp_context_free(ctx);
    imp_model_free(model);
    return rc;
}
