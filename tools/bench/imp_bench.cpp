// imp-bench: measures MTP speculative decoding against plain decoding on held-out prompts, per prompt class.
//
//   imp-bench --model DIR --prompts FILE.json [-n 128] [--mtp 1,2,3,auto] [--threads N] [--rollback rows|reforward|both]
//             [--draft-vocab N] [--draft-fp8] [--max-prompts N] [--repeat R] [--backend cpu|cuda]
//             [--temperature T] [--top-k K] [--top-p P] [--seed S]
//   imp-bench --random-weights CONFIG.json ...   (the CUDA backend at a config's real size: bench_random.cpp)
//
// FILE.json: {"code": ["prompt", ...], "prose": [...], ...}. For each class and each k it prints the acceptance per
// draft depth, tokens/s with and without MTP and the speed-up, checks that greedy MTP output equals plain output
// (with --temperature > 0 the outputs are samples of one distribution, not equal, so it counts nothing), and
// reports the cost of PrefillMtp relative to the main prefill. Speeds are ratios within one run: for
// each prompt every configuration runs R times in turn (default 3) and its fastest run counts.
#include "api/handles.h"
#include "core/file.h"
#include "core/json.h"
#include "engine/engine.h"

#include <imp/imp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

#define CHECK(call)                                                                      \
  do {                                                                                   \
    imp_status st_ = (call);                                                             \
    if (st_ != IMP_OK) {                                                                 \
      std::fprintf(stderr, "imp-bench: %s: %s\n", imp_status_name(st_), imp_last_error()); \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

struct Result {
  std::vector<imp_token> out;
  double decode_s = 0;  // after the prefill
  imp_stats stats{};
};

Result run(imp_context* ctx, const std::vector<imp_token>& prompt, int n, int k) {
  CHECK(imp_context_reset(ctx));
  imp_generate_params gp = imp_generate_default_params();
  gp.max_tokens = n;
  gp.n_draft = k;
  gp.eos_token = -2;  // fixed length, so runs compare like for like
  Result r;
  r.out.resize(n);
  size_t got = 0;
  auto t0 = std::chrono::steady_clock::now();
  CHECK(imp_generate(ctx, prompt.data(), int32_t(prompt.size()), &gp, nullptr, nullptr, r.out.data(), r.out.size(), &got, nullptr));
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.stats.size = sizeof r.stats;
  CHECK(imp_context_get_stats(ctx, &r.stats));
  r.decode_s = total - (r.stats.t_prefill_ms + r.stats.t_prefill_mtp_ms) / 1000.0;
  return r;
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  for (size_t p = 0; p < s.size();) {
    size_t q = s.find(',', p);
    std::string item = s.substr(p, q == std::string::npos ? std::string::npos : q - p);
    v.push_back(item == "auto" ? IMP_DRAFT_AUTO : std::atoi(item.c_str()));
    p = q == std::string::npos ? s.size() : q + 1;
  }
  return v;
}

}  // namespace

namespace imp_bench {
int random_weights_main(int argc, char** argv);  // bench_random.cpp
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--random-weights") == 0) return imp_bench::random_weights_main(argc, argv);
  std::string model_dir, prompts_path, rollback = "rows";
  int n = 128, threads = 0, max_prompts = 1000, draft_vocab = 0, repeat = 3;
  bool draft_fp8 = false;
  std::string backend = "cpu";
  imp_sampling_params sp = imp_sampling_default_params();
  std::vector<int> ks = {1, 2, 3, 4};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&] { return i + 1 < argc ? std::string(argv[++i]) : (std::fprintf(stderr, "%s needs a value\n", a.c_str()), std::exit(2), std::string()); };
    if (a == "--model") model_dir = val();
    else if (a == "--prompts") prompts_path = val();
    else if (a == "-n") n = std::atoi(val().c_str());
    else if (a == "--mtp") ks = parse_list(val());
    else if (a == "--threads") threads = std::atoi(val().c_str());
    else if (a == "--rollback") rollback = val();
    else if (a == "--max-prompts") max_prompts = std::atoi(val().c_str());
    else if (a == "--draft-vocab") draft_vocab = std::atoi(val().c_str());
    else if (a == "--draft-fp8") draft_fp8 = true;  // draft head from an FP8 copy of the lm_head (CUDA)
    else if (a == "--repeat") repeat = std::max(1, std::atoi(val().c_str()));
    else if (a == "--backend") backend = val();
    else if (a == "--temperature") sp.temperature = float(std::atof(val().c_str()));
    else if (a == "--top-k") sp.top_k = std::atoi(val().c_str());
    else if (a == "--top-p") sp.top_p = float(std::atof(val().c_str()));
    else if (a == "--seed") sp.seed = std::strtoull(val().c_str(), nullptr, 10);
    else {
      std::fprintf(stderr, "usage: imp-bench --model DIR --prompts FILE.json [-n N] [--mtp 1,2,3,auto] [--threads N] [--rollback rows|reforward|both] [--draft-vocab N] [--draft-fp8] [--max-prompts N] [--repeat R] [--backend cpu|cuda] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n");
      return 2;
    }
  }
  if (model_dir.empty() || prompts_path.empty()) return std::fprintf(stderr, "imp-bench: --model and --prompts are required\n"), 2;

  imp_model* model = nullptr;
  imp_model_params mp = imp_model_default_params();
  mp.backend = backend == "cuda" ? IMP_BACKEND_CUDA : IMP_BACKEND_CPU;
  CHECK(imp_model_load(&model, model_dir.c_str(), &mp));
  imp_tokenizer* tok = nullptr;
  CHECK(imp_tokenizer_load(&tok, model_dir.c_str()));
  imp_context_params cp = imp_context_default_params();
  cp.n_ctx = 4096;
  cp.n_threads = threads;
  imp_context* ctx = nullptr;
  CHECK(imp_context_create(&ctx, model, &cp));
  if (draft_vocab > 0) ctx->engine->set_draft_vocab(draft_vocab);
  ctx->engine->set_draft_head_fp8(draft_fp8);
  CHECK(imp_context_set_sampling(ctx, &sp));
  const bool greedy = sp.temperature == 0.0f;

  imp::JsonDocument doc = imp::JsonDocument::parse(imp::read_file(prompts_path), prompts_path);
  std::vector<std::string> modes = rollback == "both" ? std::vector<std::string>{"rows", "reforward"} : std::vector<std::string>{rollback};
  std::printf("model %s, backend %s, %d tokens per prompt, threads %d, best of %d runs\n", model_dir.c_str(), backend.c_str(), n,
              threads, repeat);
  if (draft_fp8) std::printf("draft head: FP8 E4M3 copy of the lm_head (--draft-fp8)\n");
  if (!greedy)
    std::printf("sampling: temperature %g, top-k %d, top-p %g, seed %llu (the same random stream for every run)\n",
                double(sp.temperature), sp.top_k, double(sp.top_p), (unsigned long long)sp.seed);
  for (auto& [cls, list] : doc.root().members()) {
    std::vector<std::vector<imp_token>> prompts;
    for (auto& v : list.elements()) {
      if (int(prompts.size()) >= max_prompts) break;
      std::string text = v.as_string();
      size_t cnt = 0;
      imp_tokenize(tok, text.data(), text.size(), 1, nullptr, 0, &cnt);
      std::vector<imp_token> ids(cnt);
      CHECK(imp_tokenize(tok, text.data(), text.size(), 1, ids.data(), ids.size(), &cnt));
      prompts.push_back(ids);
    }
    // Configurations: plain decoding first, then every (rollback, k). For each prompt every configuration runs
    // `repeat` times in turn and keeps its fastest run, so a slow moment of the machine hits all of them alike
    // and the ratios stay meaningful.
    struct Config {
      std::string mode;
      int k;
      double seconds = 0;
      int64_t drafted[IMP_MAX_DRAFT] = {}, accepted[IMP_MAX_DRAFT] = {}, verifies = 0, emitted = 0;
      int mismatches = 0;
    };
    std::vector<Config> configs{{"rows", 0}};
    for (const std::string& mode : modes)
      for (int k : ks) configs.push_back({mode, k});
    double prefill_ms = 0, prefill_mtp_ms = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::vector<Result> best(configs.size());
      for (int rep = 0; rep < repeat; ++rep)
        for (size_t c = 0; c < configs.size(); ++c) {
          ctx->engine->set_rollback_mode(configs[c].mode == "rows" ? imp::RollbackMode::KeepRowStates
                                                                 : imp::RollbackMode::SnapshotReforward);
          Result r = run(ctx, prompts[i], n, configs[c].k);
          if (rep == 0 || r.decode_s < best[c].decode_s) best[c] = r;
        }
      for (size_t c = 0; c < configs.size(); ++c) {
        Config& g = configs[c];
        const Result& r = best[c];
        g.seconds += r.decode_s;
        g.mismatches += r.out != best[0].out;
        for (int d = 0; d < IMP_MAX_DRAFT; ++d) g.drafted[d] += r.stats.n_drafted[d], g.accepted[d] += r.stats.n_accepted[d];
        g.verifies += r.stats.n_verify;
        g.emitted += r.stats.n_emitted;
        if (c > 0) prefill_ms += r.stats.t_prefill_ms, prefill_mtp_ms += r.stats.t_prefill_mtp_ms;
      }
    }
    const double tokens = double(prompts.size()) * (n - 1), plain_s = configs[0].seconds;
    std::printf("%-10s plain                     prompts %zu | %.1f tok/s\n", cls.c_str(), prompts.size(), tokens / plain_s);
    for (size_t c = 1; c < configs.size(); ++c) {
      const Config& g = configs[c];
      std::printf("%-10s k=%-4s rollback=%-9s prompts %zu | accept", cls.c_str(),
                  g.k == IMP_DRAFT_AUTO ? "auto" : std::to_string(g.k).c_str(), g.mode.c_str(), prompts.size());
      for (int d = 0; d < IMP_MAX_DRAFT; ++d)
        if (g.drafted[d]) std::printf(" d%d %.1f%%", d + 1, 100.0 * g.accepted[d] / g.drafted[d]);
      std::printf(" | %.2f tok/step | %.1f tok/s, speed-up %.2fx", g.verifies ? double(g.emitted) / g.verifies : 0.0,
                  tokens / g.seconds, plain_s / g.seconds);
      if (greedy) std::printf(" | greedy mismatches %d\n", g.mismatches);
      else std::printf(" | sampled\n");
    }
    std::printf("%-10s PrefillMtp cost: %.1f%% of the main prefill\n", cls.c_str(), prefill_ms > 0 ? 100.0 * prefill_mtp_ms / prefill_ms : 0.0);
  }
  imp_context_free(ctx);
  imp_tokenizer_free(tok);
  imp_model_free(model);
  return 0;
}
