// The C ABI of sampling, MTP drafting and verification, generation and statistics.
#include "api/guard.h"
#include "api/handles.h"
#include "engine/adaptive.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

using imp::fail;
using imp::guard;
using imp::require;

extern "C" {

imp_sampling_params imp_sampling_default_params(void) {
  imp_sampling_params p;
  std::memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.temperature = 0.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 0;
  return p;
}

imp_status imp_context_set_sampling(imp_context* ctx, const imp_sampling_params* params) {
  return guard([&] {
    imp::require_live(ctx, "ctx");
    require(params, "params");
    const imp_sampling_params p =
        imp::read_params(params, imp_sampling_default_params(), "imp_sampling_params", "imp_sampling_default_params");
    if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) fail(IMP_ERR_INVALID_ARGUMENT, "temperature must be >= 0");
    if (p.top_k < 0) fail(IMP_ERR_INVALID_ARGUMENT, "top_k must be >= 0");
    if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) fail(IMP_ERR_INVALID_ARGUMENT, "top_p must be in (0, 1]");
    if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) fail(IMP_ERR_INVALID_ARGUMENT, "min_p must be in [0, 1]");
    imp::SamplingParams s;
    s.temperature = p.temperature;
    s.top_k = p.top_k;
    s.top_p = p.top_p;
    s.min_p = p.min_p;
    s.seed = p.seed;
    ctx->engine->set_sampling(s);
  });
}

imp_status imp_sample(imp_context* ctx, const float* logits, imp_token* out) {
  return guard([&] {
    imp::require_live(ctx, "ctx");
    require(logits, "logits");
    require(out, "out");
    *out = ctx->engine->sample(logits);
  });
}

imp_status imp_mtp_draft(imp_context* ctx, imp_token last, int32_t n_draft, imp_token* drafts, float* draft_probs) {
  return guard([&] {
    imp::require_live(ctx, "ctx");
    require(drafts, "drafts");
    ctx->engine->draft(last, n_draft, drafts, draft_probs);
  });
}

imp_status imp_mtp_verify(imp_context* ctx, const imp_token* drafts, int32_t n_drafts, imp_token* out,
                          int32_t out_capacity, int32_t* n_out, int32_t* n_accepted) {
  return guard([&] {
    imp::require_live(ctx, "ctx");
    if (n_drafts > 0) require(drafts, "drafts");
    require(out, "out");
    require(n_out, "n_out");
    require(n_accepted, "n_accepted");
    int acc = 0;
    *n_out = ctx->engine->verify(drafts, n_drafts, out, out_capacity, &acc);
    *n_accepted = acc;
  });
}

imp_generate_params imp_generate_default_params(void) {
  imp_generate_params p;
  std::memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.max_tokens = 128;
  p.n_draft = 0;
  p.eos_token = -1;
  return p;
}

imp_status imp_generate(imp_context* ctx, const imp_token* prompt, int32_t n_prompt, const imp_generate_params* params,
                        imp_token_callback callback, void* user_data, imp_token* out, size_t out_capacity,
                        size_t* n_out, imp_stop_reason* stop) {
  if (n_out) *n_out = 0;
  return guard([&] {
    imp::require_live(ctx, "ctx");
    require(prompt, "prompt");
    const imp_generate_params p =
        imp::read_params(params, imp_generate_default_params(), "imp_generate_params", "imp_generate_default_params");
    if (p.max_tokens <= 0) fail(IMP_ERR_INVALID_ARGUMENT, "max_tokens must be > 0");
    if ((p.n_draft < 0 && p.n_draft != IMP_DRAFT_AUTO) || p.n_draft > IMP_MAX_DRAFT)
      fail(IMP_ERR_INVALID_ARGUMENT, "n_draft must be in [0, ", IMP_MAX_DRAFT, "] or IMP_DRAFT_AUTO");
    imp::Engine& e = *ctx->engine;
    if (p.n_draft != 0 && !e.has_mtp()) fail(IMP_ERR_UNSUPPORTED, "n_draft is not 0 but the model has no MTP head");
    const bool adaptive = p.n_draft == IMP_DRAFT_AUTO;
    imp::AdaptiveDraft policy(8);
    using Clock = std::chrono::steady_clock;
    auto ms = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    const int V = e.model().config.n_vocab;
    const int eos = p.eos_token == -1 ? e.model().config.eos_token_id : p.eos_token;

    size_t emitted = 0;
    imp_stop_reason why = IMP_STOP_MAX_TOKENS;
    // emit() returns false once generation must end.
    auto emit = [&](imp_token t) {
      if (out && emitted < out_capacity) out[emitted] = t;
      ++emitted;
      if (n_out) *n_out = emitted;
      if (callback && callback(t, user_data) != 0) return why = IMP_STOP_CALLBACK, false;
      if (t == eos) return why = IMP_STOP_EOS, false;
      if (emitted >= size_t(p.max_tokens)) return why = IMP_STOP_MAX_TOKENS, false;
      return true;
    };

    std::vector<float> logits(V);
    e.prefill(prompt, n_prompt, false, logits.data());
    imp_token last = e.sample(logits.data());
    if (emit(last)) {
      std::vector<imp_token> drafts(imp::kMaxDraft), toks(imp::kMaxDraft + 1);
      for (;;) {
        const int room = e.n_ctx() - e.n_past();
        if (room < 1) {
          why = IMP_STOP_CONTEXT_FULL;
          break;
        }
        const int k = std::min(adaptive ? policy.choose() : p.n_draft, room - 1);
        bool go = true;
        auto t0 = Clock::now();
        if (k > 0) {
          e.draft(last, k, drafts.data(), nullptr);
          auto t1 = Clock::now();
          int acc = 0, n = e.verify(drafts.data(), k, toks.data(), k + 1, &acc);
          policy.on_cycle(k, acc, ms(t0, t1), ms(t1, Clock::now()));
          for (int i = 0; i < n && go; ++i) go = emit(toks[i]);
          last = toks[n - 1];
        } else {
          last = e.decode(last);
          policy.on_decode(ms(t0, Clock::now()));
          go = emit(last);
        }
        if (!go) break;
      }
    }
    if (stop) *stop = why;
  });
}

imp_status imp_context_get_stats(const imp_context* ctx, imp_stats* out) {
  return guard([&] {
    imp::require_live(ctx, "ctx");
    require(out, "out");
    if (out->size < sizeof(imp_stats)) fail(IMP_ERR_INVALID_ARGUMENT, "imp_stats.size is ", out->size, "; set it to sizeof(imp_stats)");
    const imp::EngineStats& s = ctx->engine->stats();
    imp_stats r;
    std::memset(&r, 0, sizeof r);
    r.size = sizeof r;
    for (int i = 0; i < IMP_MAX_DRAFT; ++i) {
      r.n_drafted[i] = s.drafted[i];
      r.n_accepted[i] = s.accepted[i];
    }
    r.n_emitted = s.emitted;
    r.n_verify = s.verify_calls;
    r.n_main_forward = s.main_forwards;
    r.n_mtp_forward = s.mtp_forwards;
    r.n_prefill_tokens = s.prefill_tokens;
    r.t_prefill_ms = s.prefill_ms;
    r.t_prefill_mtp_ms = s.prefill_mtp_ms;
    r.t_decode_ms = s.decode_ms;
    r.t_draft_ms = s.draft_ms;
    r.t_verify_ms = s.verify_ms;
    std::memcpy(out, &r, sizeof r);
  });
}

}  // extern "C"
