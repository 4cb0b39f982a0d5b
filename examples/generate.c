/* generate: text in, streamed text out, with MTP speculative decoding (three drafts per step).
 *
 *     generate models/imp-demo -p "Once upon a time" -n 64
 *     generate tests/fixtures/qwen35_dense -t 1,2,3 -n 16      (a model without tokenizer.json: ids out)
 *
 * The prompt goes through imp_tokenize; each emitted token comes back through imp_generate's callback, becomes
 * bytes with imp_token_to_piece, and is printed at once, except for an unfinished UTF-8 character at the end
 * (imp_utf8_incomplete_tail), which waits for the next piece. */
#include "common.h"

typedef struct stream {
    const imp_tokenizer *tok; /* NULL: print ids */
    char pending[64];         /* bytes of a UTF-8 character still incomplete */
    size_t n_pending;
    int32_t n_tokens;
} stream;

static int32_t IMP_CALL on_token(imp_token token, void *user_data) {
    stream *s = (stream *)user_data;
    char buf[256];
    size_t n = 0, tail;
    s->n_tokens++;
    if (!s->tok) {
        printf("%s%d", s->n_tokens > 1 ? " " : "", (int)token);
        fflush(stdout);
        return 0;
    }
    memcpy(buf, s->pending, s->n_pending);
    if (imp_token_to_piece(s->tok, token, buf + s->n_pending, sizeof buf - s->n_pending, &n) != IMP_OK) n = 0;
    n += s->n_pending;
    tail = imp_utf8_incomplete_tail(buf, n);
    fwrite(buf, 1, n - tail, stdout);
    fflush(stdout);
    memcpy(s->pending, buf + n - tail, tail);
    s->n_pending = tail;
    return 0;
}

int main(int argc, char **argv) {
    example_options o;
    imp_model *model;
    imp_context *ctx;
    imp_tokenizer *tok;
    imp_token prompt[EXAMPLE_MAX_PROMPT];
    int32_t n_prompt = 0, i;
    imp_generate_params gp = imp_generate_default_params();
    imp_stop_reason stop = IMP_STOP_MAX_TOKENS;
    imp_stats stats;
    stream s;
    size_t n_out = 0;
    int64_t drafted = 0, accepted = 0;
    int rc = 1;

    if (example_parse(argc, argv, &o, 3)) return 2;
    if (example_load(&o, &model, &ctx, &tok)) goto done;
    if (example_prompt(&o, tok, prompt, &n_prompt)) goto done;

    memset(&s, 0, sizeof s);
    s.tok = tok;
    gp.max_tokens = o.n_predict;
    gp.n_draft = o.n_draft;
    if (imp_generate(ctx, prompt, n_prompt, &gp, on_token, &s, NULL, 0, &n_out, &stop) != IMP_OK) {
        fprintf(stderr, "\nimp_generate: %s\n", imp_last_error());
        goto done;
    }
    fwrite(s.pending, 1, s.n_pending, stdout); /* a character cut off by the end of generation */
    printf("\n");

    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    imp_context_get_stats(ctx, &stats);
    for (i = 0; i < IMP_MAX_DRAFT; ++i) {
        drafted += stats.n_drafted[i];
        accepted += stats.n_accepted[i];
    }
    fprintf(stderr, "generated %d tokens after a %d-token prompt (stop reason %d), %d drafts per step: %lld of %lld"
                    " drafts accepted (%.1f%%)\n",
            (int)n_out, (int)n_prompt, (int)stop, (int)o.n_draft, (long long)accepted, (long long)drafted,
            drafted ? 100.0 * (double)accepted / (double)drafted : 0.0);
    rc = (int)n_out == s.n_tokens && n_out > 0 ? 0 : 1;

done:
    imp_tokenizer_free(tok);
    imp_context_free(ctx);
    imp_model_free(model);
    return rc;
}
