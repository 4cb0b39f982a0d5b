// imp-cli: generate text with a model, with or without MTP speculative decoding, and report acceptance per
// draft depth and tokens/s of both. Uses only the public C API of include/imp/imp.h.
//
//   imp-cli [--model DIR] (--prompt TEXT | --tokens ID,ID,...) [-n N] [--mtp K] [--temp T] [--top-k K]
//           [--top-p P] [--min-p P] [--seed S] [--threads N] [--ctx N] [--no-compare] [--quiet]
#include <imp/imp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef IMP_DEMO_MODEL_DIR
#define IMP_DEMO_MODEL_DIR "models/imp-demo"
#endif

namespace {

struct Options {
  std::string model = IMP_DEMO_MODEL_DIR;
  std::string prompt;
  std::vector<imp_token> tokens;
  bool have_prompt = false;
  int n_predict = 128, mtp = IMP_DRAFT_AUTO, threads = 0, n_ctx = 4096;
  float temp = 0.0f, top_p = 1.0f, min_p = 0.0f;
  int top_k = 0;
  unsigned long long seed = 0;
  bool compare = true, quiet = false;
};

void usage() {
  std::fprintf(stderr,
               "usage: imp-cli [--model DIR] (--prompt TEXT | --tokens ID,ID,...) [-n N] [--mtp K]\n"
               "               [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--threads N] [--ctx N]\n"
               "               [--no-compare] [--quiet]\n"
               "  --mtp K       MTP drafts per step (0 = plain decoding, auto = adaptive; default auto)\n"
               "  --no-compare  skip the plain-decoding run used for the speed-up figure\n");
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "imp-cli: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model") o.model = value();
    else if (a == "--prompt") o.prompt = value(), o.have_prompt = true;
    else if (a == "--tokens") {
      std::string s = value();
      o.tokens.clear();
      for (size_t p = 0; p < s.size();) {
        size_t q = s.find(',', p);
        o.tokens.push_back(imp_token(std::atoi(s.substr(p, q - p).c_str())));
        p = q == std::string::npos ? s.size() : q + 1;
      }
      o.have_prompt = true;
    } else if (a == "-n" || a == "--n-predict") o.n_predict = std::atoi(value());
    else if (a == "--mtp") {
      const char* v = value();
      o.mtp = std::strcmp(v, "auto") == 0 ? IMP_DRAFT_AUTO : std::atoi(v);
    }
    else if (a == "--temp") o.temp = float(std::atof(value()));
    else if (a == "--top-k") o.top_k = std::atoi(value());
    else if (a == "--top-p") o.top_p = float(std::atof(value()));
    else if (a == "--min-p") o.min_p = float(std::atof(value()));
    else if (a == "--seed") o.seed = std::strtoull(value(), nullptr, 10);
    else if (a == "--threads") o.threads = std::atoi(value());
    else if (a == "--ctx") o.n_ctx = std::atoi(value());
    else if (a == "--no-compare") o.compare = false;
    else if (a == "--quiet") o.quiet = true;
    else if (a == "-h" || a == "--help") return usage(), false;
    else {
      std::fprintf(stderr, "imp-cli: unknown option %s\n", a.c_str());
      usage();
      return false;
    }
  }
  if (!o.have_prompt) {
    usage();
    return false;
  }
  return true;
}

#define CHECK(call)                                                                               \
  do {                                                                                            \
    imp_status st_ = (call);                                                                      \
    if (st_ != IMP_OK) {                                                                          \
      std::fprintf(stderr, "imp-cli: %s: %s\n", imp_status_name(st_), imp_last_error());          \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

// Streams token text to stdout, holding back bytes of an unfinished UTF-8 character.
struct Printer {
  const imp_tokenizer* tok = nullptr;
  std::string pending;
  bool on = true;
  static int32_t IMP_CALL on_token(imp_token t, void* self) {
    auto* p = static_cast<Printer*>(self);
    if (!p->on || !p->tok) return 0;
    if (imp_tokenizer_is_special(p->tok, t)) return 0;
    char buf[256];
    size_t n = 0;
    if (imp_token_to_piece(p->tok, t, buf, sizeof buf, &n) != IMP_OK) return 0;
    p->pending.append(buf, n);
    size_t hold = imp_utf8_incomplete_tail(p->pending.data(), p->pending.size());
    std::fwrite(p->pending.data(), 1, p->pending.size() - hold, stdout);
    std::fflush(stdout);
    p->pending.erase(0, p->pending.size() - hold);
    return 0;
  }
};

struct Run {
  std::vector<imp_token> out;
  double seconds = 0;
  imp_stats stats{};
};

Run generate(imp_context* ctx, const std::vector<imp_token>& prompt, const Options& o, int n_draft, Printer* printer) {
  CHECK(imp_context_reset(ctx));
  imp_generate_params gp = imp_generate_default_params();
  gp.max_tokens = o.n_predict;
  gp.n_draft = n_draft;
  Run r;
  r.out.resize(size_t(o.n_predict));
  size_t n = 0;
  imp_stop_reason why;
  auto t0 = std::chrono::steady_clock::now();
  CHECK(imp_generate(ctx, prompt.data(), int32_t(prompt.size()), &gp, printer ? Printer::on_token : nullptr, printer,
                     r.out.data(), r.out.size(), &n, &why));
  r.out.resize(n);
  r.stats.size = sizeof r.stats;
  CHECK(imp_context_get_stats(ctx, &r.stats));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// Decode throughput: tokens after the first (which comes from the prefill) over the time spent after prefill.
double decode_tps(const Run& r) {
  double t = r.seconds - (r.stats.t_prefill_ms + r.stats.t_prefill_mtp_ms) / 1000.0;
  return r.out.size() > 1 && t > 0 ? double(r.out.size() - 1) / t : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;

  imp_model* model = nullptr;
  CHECK(imp_model_load(&model, o.model.c_str(), nullptr));
  imp_tokenizer* tok = nullptr;
  if (imp_tokenizer_load(&tok, o.model.c_str()) != IMP_OK) {
    tok = nullptr;
    if (!o.tokens.size()) {
      std::fprintf(stderr, "imp-cli: %s\n", imp_last_error());
      return 1;
    }
  }
  std::vector<imp_token> prompt = o.tokens;
  if (prompt.empty()) {
    size_t n = 0;
    imp_tokenize(tok, o.prompt.data(), o.prompt.size(), 1, nullptr, 0, &n);
    prompt.resize(n);
    CHECK(imp_tokenize(tok, o.prompt.data(), o.prompt.size(), 1, prompt.data(), prompt.size(), &n));
  }
  imp_model_info info;
  info.size = sizeof info;
  CHECK(imp_model_get_info(model, &info));
  if (o.mtp != 0 && info.n_mtp_layer == 0) {
    std::fprintf(stderr, "imp-cli: %s has no MTP head; decoding without MTP\n", o.model.c_str());
    o.mtp = 0;
  }

  imp_context_params cp = imp_context_default_params();
  cp.n_ctx = o.n_ctx;
  cp.n_threads = o.threads;
  imp_context* ctx = nullptr;
  CHECK(imp_context_create(&ctx, model, &cp));
  imp_sampling_params sp = imp_sampling_default_params();
  sp.temperature = o.temp;
  sp.top_k = o.top_k;
  sp.top_p = o.top_p;
  sp.min_p = o.min_p;
  sp.seed = o.seed;
  CHECK(imp_context_set_sampling(ctx, &sp));

  Printer printer;
  printer.tok = tok;
  printer.on = !o.quiet;
  if (!o.quiet && tok) {
    std::fwrite(o.prompt.data(), 1, o.prompt.size(), stdout);
    std::fflush(stdout);
  }
  Run main_run = generate(ctx, prompt, o, o.mtp, &printer);
  if (!o.quiet) std::printf("%s\n", printer.pending.c_str());
  if (!tok || o.quiet) {
    std::printf("tokens:");
    for (imp_token t : main_run.out) std::printf(" %d", t);
    std::printf("\n");
  }

  std::printf("\n--- %s: %zu prompt tokens, %zu generated, %s, temperature %.2f\n", info.arch, prompt.size(),
              main_run.out.size(), o.mtp ? "MTP" : "plain decoding", o.temp);
  if (o.mtp != 0) {
    const imp_stats& s = main_run.stats;
    int depth = 0;
    for (int d = 0; d < IMP_MAX_DRAFT; ++d)
      if (s.n_drafted[d] > 0) depth = d + 1;
    if (o.mtp > 0) std::printf("MTP k=%d: ", o.mtp);
    else std::printf("MTP k=auto (adaptive, up to %d used): ", depth);
    std::printf("%lld verify steps, %.2f tokens per step\n", (long long)s.n_verify,
                s.n_verify ? double(s.n_emitted) / double(s.n_verify) : 0.0);
    std::printf("acceptance by draft depth:");
    for (int d = 0; d < depth; ++d)
      std::printf("  %d: %.1f%% (%lld/%lld)", d + 1, s.n_drafted[d] ? 100.0 * double(s.n_accepted[d]) / double(s.n_drafted[d]) : 0.0,
                  (long long)s.n_accepted[d], (long long)s.n_drafted[d]);
    std::printf("\nprefill: main %.1f ms, MTP head %.1f ms (%.0f%% of the main prefill)\n", s.t_prefill_ms, s.t_prefill_mtp_ms,
                s.t_prefill_ms > 0 ? 100.0 * s.t_prefill_mtp_ms / s.t_prefill_ms : 0.0);
    std::printf("time: draft %.1f ms, verify %.1f ms\n", s.t_draft_ms, s.t_verify_ms);
  }
  const double tps = decode_tps(main_run);
  if (o.mtp != 0 && o.compare) {
    Run plain = generate(ctx, prompt, o, 0, nullptr);
    const double plain_tps = decode_tps(plain);
    bool same = plain.out == main_run.out;
    std::printf("decode: %.1f tokens/s with MTP, %.1f tokens/s without: speed-up %.2fx%s\n", tps, plain_tps,
                plain_tps > 0 ? tps / plain_tps : 0.0,
                o.temp <= 0 ? (same ? " (outputs identical)" : " (OUTPUTS DIFFER: bug)") : "");
    if (o.temp <= 0 && !same) return 3;
  } else {
    std::printf("decode: %.1f tokens/s\n", tps);
  }
  imp_context_free(ctx);
  imp_tokenizer_free(tok);
  imp_model_free(model);
  return 0;
}
