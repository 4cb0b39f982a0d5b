/* Shared by the examples: command-line options and prompt input (text through the tokenizer, or token ids). */
#ifndef IMP_EXAMPLES_COMMON_H
#define IMP_EXAMPLES_COMMON_H

#include <imp/imp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXAMPLE_MAX_PROMPT 4096

typedef struct example_options {
    const char *model_dir;
    const char *prompt_text;  /* -p: text, needs tokenizer.json in the model directory */
    const char *prompt_ids;   /* -t: comma-separated token ids, for models without a tokenizer */
    int32_t n_predict;        /* -n: tokens to generate */
    int32_t n_draft;          /* -k: MTP drafts per step */
    float temperature;        /* --temp */
    uint64_t seed;            /* --seed */
    int32_t n_ctx;            /* --ctx */
    int32_t n_threads;        /* --threads */
} example_options;

static void example_usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s MODEL_DIR (-p TEXT | -t ID,ID,...) [-n N] [-k DRAFTS] [--temp T] [--seed S] [--ctx N]"
            " [--threads N]\n",
            argv0);
}

/* Returns 0 on success, prints usage and returns 1 on bad arguments. */
static int example_parse(int argc, char **argv, example_options *o, int32_t default_draft) {
    int i;
    memset(o, 0, sizeof *o);
    o->n_predict = 32;
    o->n_draft = default_draft;
    o->n_ctx = 1024;
    o->n_threads = 2;
    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' && !o->model_dir) { o->model_dir = a; continue; }
        if (!v) { example_usage(argv[0]); return 1; }
        if (!strcmp(a, "-p")) o->prompt_text = v;
        else if (!strcmp(a, "-t")) o->prompt_ids = v;
        else if (!strcmp(a, "-n")) o->n_predict = (int32_t)atoi(v);
        else if (!strcmp(a, "-k")) o->n_draft = (int32_t)atoi(v);
        else if (!strcmp(a, "--temp")) o->temperature = (float)atof(v);
        else if (!strcmp(a, "--seed")) o->seed = (uint64_t)strtoull(v, NULL, 10);
        else if (!strcmp(a, "--ctx")) o->n_ctx = (int32_t)atoi(v);
        else if (!strcmp(a, "--threads")) o->n_threads = (int32_t)atoi(v);
        else { example_usage(argv[0]); return 1; }
        ++i;
    }
    if (!o->model_dir || (!o->prompt_text == !o->prompt_ids) || o->n_predict <= 0) {
        example_usage(argv[0]);
        return 1;
    }
    return 0;
}

/* Fills prompt[0..*n_prompt) from -p (tokenized) or -t (parsed). tok may be NULL with -t. Returns 0 or 1. */
static int example_prompt(const example_options *o, const imp_tokenizer *tok, imp_token *prompt, int32_t *n_prompt) {
    size_t n = 0;
    if (o->prompt_text) {
        imp_status st;
        if (!tok) { fprintf(stderr, "-p needs tokenizer.json in %s; use -t with token ids\n", o->model_dir); return 1; }
        st = imp_tokenize(tok, o->prompt_text, strlen(o->prompt_text), 1, prompt, EXAMPLE_MAX_PROMPT, &n);
        if (st != IMP_OK) { fprintf(stderr, "imp_tokenize: %s\n", imp_last_error()); return 1; }
    } else {
        const char *s = o->prompt_ids;
        char *end;
        while (*s && n < EXAMPLE_MAX_PROMPT) {
            long id = strtol(s, &end, 10);
            if (end == s) { fprintf(stderr, "bad token list: %s\n", o->prompt_ids); return 1; }
            prompt[n++] = (imp_token)id;
            s = *end == ',' ? end + 1 : end;
        }
    }
    if (n == 0) { fprintf(stderr, "empty prompt\n"); return 1; }
    *n_prompt = (int32_t)n;
    return 0;
}

/* Loads the model, a context with the options' sampler, and the tokenizer if the directory has one. */
static int example_load(const example_options *o, imp_model **model, imp_context **ctx, imp_tokenizer **tok) {
    imp_context_params cp = imp_context_default_params();
    imp_sampling_params sp = imp_sampling_default_params();
    *model = NULL;
    *ctx = NULL;
    *tok = NULL;
    if (imp_model_load(model, o->model_dir, NULL) != IMP_OK) {
        fprintf(stderr, "imp_model_load: %s\n", imp_last_error());
        return 1;
    }
    cp.n_ctx = o->n_ctx;
    cp.n_threads = o->n_threads;
    if (imp_context_create(ctx, *model, &cp) != IMP_OK) {
        fprintf(stderr, "imp_context_create: %s\n", imp_last_error());
        return 1;
    }
    sp.temperature = o->temperature;
    sp.seed = o->seed;
    if (imp_context_set_sampling(*ctx, &sp) != IMP_OK) {
        fprintf(stderr, "imp_context_set_sampling: %s\n", imp_last_error());
        return 1;
    }
    if (imp_tokenizer_load(tok, o->model_dir) != IMP_OK) *tok = NULL; /* no tokenizer.json: ids only */
    return 0;
}

#endif /* IMP_EXAMPLES_COMMON_H */
