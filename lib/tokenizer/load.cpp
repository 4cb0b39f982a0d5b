// Reading tokenizer.json into an imp::Tokenizer. Only what byte-level BPE as Qwen uses it needs is accepted;
// everything else is refused by name (IMP_ERR_TOKENIZER) rather than silently tokenized differently.
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#include <algorithm>

namespace imp {


namespace {

// Ids far beyond any real vocabulary would make the by-id tables huge; refuse them instead.
constexpr int64_t kMaxVocab = int64_t(1) << 24;

std::string type_of(const JsonValue& v, const std::string& src, const char* what) {
  if (!v.is_object()) fail(IMP_ERR_TOKENIZER, src, ": ", what, " is not an object");
  auto t = v.find("type");
  if (!t || !t->is_string()) fail(IMP_ERR_TOKENIZER, src, ": ", what, " has no \"type\"");
  return t->as_string();
}

bool flag(const JsonValue& obj, const char* key, bool fallback) {
  auto v = obj.find(key);
  if (!v || v->is_null()) return fallback;
  return v->as_bool(key);
}

int32_t token_index(const JsonValue& v, const std::string& src, const char* what) {
  int64_t id = v.as_int(what);
  if (id < 0 || id >= kMaxVocab) fail(IMP_ERR_TOKENIZER, src, ": ", what, " ", id, " is out of range");
  return int32_t(id);
}

void read_normalizer(const JsonValue& v, const std::string& src, bool* nfc) {
  if (v.is_null()) return;
  std::string type = type_of(v, src, "normalizer");
  if (type == "NFC") {
    *nfc = true;
  } else if (type == "Sequence") {
    auto list = v.find("normalizers");
    if (!list || !list->is_array()) fail(IMP_ERR_TOKENIZER, src, ": normalizer Sequence has no \"normalizers\" list");
    for (const JsonValue& n : list->elements()) read_normalizer(n, src, nfc);
  } else {
    fail(IMP_ERR_TOKENIZER, src, ": normalizer type \"", type, "\" is not supported (only NFC)");
  }
}

// The pre-tokenizer must come down to: an optional Split by a known regex, then ByteLevel (or ByteLevel with
// use_regex, which splits by GPT-2's regex itself).
struct PreTokenizerSpec {
  tok::SplitPattern split = tok::SplitPattern::None;
  bool have_split = false;
  bool have_byte_level = false;
};

void read_pre_tokenizer(const JsonValue& v, const std::string& src, PreTokenizerSpec* spec) {
  std::string type = type_of(v, src, "pre_tokenizer");
  if (type == "Sequence") {
    auto list = v.find("pretokenizers");
    if (!list || !list->is_array()) fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer Sequence has no \"pretokenizers\" list");
    for (const JsonValue& p : list->elements()) read_pre_tokenizer(p, src, spec);
  } else if (type == "Split") {
    if (spec->have_split || spec->have_byte_level)
      fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer: only one Split, before ByteLevel, is supported");
    auto pattern = v.find("pattern");
    auto regex = pattern && pattern->is_object() ? pattern->find("Regex") : std::nullopt;
    if (!regex || !regex->is_string()) fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer Split needs a {\"Regex\": ...} pattern");
    spec->split = tok::pattern_from_regex(regex->as_string());
    if (spec->split == tok::SplitPattern::None)
      fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer Split regex is not one libimp implements "
           "(Qwen2/Qwen3's, Qwen3.5's or GPT-2's)");
    auto behavior = v.find("behavior");
    if (!behavior || !behavior->is_string() || behavior->as_string() != "Isolated")
      fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer Split behavior must be \"Isolated\"");
    if (flag(v, "invert", false)) fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer Split with invert is not supported");
    spec->have_split = true;
  } else if (type == "ByteLevel") {
    if (spec->have_byte_level) fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer has two ByteLevel steps");
    if (flag(v, "add_prefix_space", false))
      fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer ByteLevel with add_prefix_space is not supported");
    if (flag(v, "use_regex", true)) {
      if (spec->have_split) fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer ByteLevel use_regex after a Split is not supported");
      spec->split = tok::SplitPattern::Gpt2;
      spec->have_split = true;
    }
    spec->have_byte_level = true;
  } else {
    fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer type \"", type, "\" is not supported");
  }
}

// A merges entry: "a b" (the older form) or ["a", "b"].
std::pair<std::string, std::string> merge_parts(const JsonValue& m, const std::string& src, size_t k) {
  if (m.is_string()) {
    std::string s = m.as_string();
    size_t sp = s.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
      fail(IMP_ERR_TOKENIZER, src, ": merges[", k, "] \"", s, "\" is not two tokens separated by one space");
    return {s.substr(0, sp), s.substr(sp + 1)};
  }
  if (m.is_array() && m.size() == 2) {
    auto e = m.elements();
    if (e[0].is_string() && e[1].is_string()) return {e[0].as_string(), e[1].as_string()};
  }
  fail(IMP_ERR_TOKENIZER, src, ": merges[", k, "] is neither \"a b\" nor [\"a\", \"b\"]");
}

}  // namespace

class TokenizerLoader {
 public:
  static std::unique_ptr<Tokenizer> build(const JsonValue& root, const std::string& src);
};

std::unique_ptr<Tokenizer> TokenizerLoader::build(const JsonValue& root, const std::string& src) {
  if (!root.is_object()) fail(IMP_ERR_TOKENIZER, src, ": not a JSON object");
  std::unique_ptr<Tokenizer> t(new Tokenizer());

  // The model: vocab and merges.
  auto model = root.find("model");
  if (!model || !model->is_object()) fail(IMP_ERR_TOKENIZER, src, ": no \"model\"");
  if (auto type = model->find("type")) {
    std::string name = type->is_string() ? type->as_string() : std::string("?");
    if (name != "BPE") fail(IMP_ERR_TOKENIZER, src, ": model type \"", name, "\" is not supported (only BPE)");
  }
  auto vocab_v = model->find("vocab");
  if (!vocab_v || !vocab_v->is_object()) fail(IMP_ERR_TOKENIZER, src, ": model has no \"vocab\" object");
  auto merges_v = model->find("merges");
  if (!merges_v || !merges_v->is_array()) fail(IMP_ERR_TOKENIZER, src, ": model has no \"merges\" list");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto v = model->find(key);
    if (v && !v->is_null() && !v->as_string(key).empty())
      fail(IMP_ERR_TOKENIZER, src, ": model ", key, " is not supported");
  }
  if (flag(*model, "byte_fallback", false)) fail(IMP_ERR_TOKENIZER, src, ": model byte_fallback is not supported");
  if (auto d = model->find("dropout"); d && !d->is_null() && d->as_number("dropout") != 0.0)
    fail(IMP_ERR_TOKENIZER, src, ": model dropout is not supported");

  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(vocab_v->size() * 2);
  int64_t n_vocab = 0;
  for (auto& [text, idv] : vocab_v->members()) {
    int32_t id = token_index(idv, src, "vocab id");
    n_vocab = std::max<int64_t>(n_vocab, int64_t(id) + 1);
    vocab[text] = id;
  }
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> merge_ids;
  {
    auto list = merges_v->elements();
    merges.reserve(list.size());
    merge_ids.reserve(list.size());
    auto lookup = [&](const std::string& s, size_t k) {
      auto it = vocab.find(s);
      if (it == vocab.end()) fail(IMP_ERR_TOKENIZER, src, ": merges[", k, "] names \"", s, "\", which is not in the vocab");
      return it->second;
    };
    for (size_t k = 0; k < list.size(); ++k) {
      auto [a, b] = merge_parts(list[k], src, k);
      merges.emplace_back(lookup(a, k), lookup(b, k));
      merge_ids.push_back(lookup(a + b, k));
    }
  }
  int32_t unk_id = -1;
  if (auto unk = model->find("unk_token"); unk && !unk->is_null()) {
    auto it = vocab.find(unk->as_string("unk_token"));
    if (it == vocab.end()) fail(IMP_ERR_TOKENIZER, src, ": unk_token is not in the vocab");
    unk_id = it->second;
  }

  // Added tokens.
  if (auto added = root.find("added_tokens"); added && !added->is_null()) {
    if (!added->is_array()) fail(IMP_ERR_TOKENIZER, src, ": added_tokens is not a list");
    for (const JsonValue& a : added->elements()) {
      if (!a.is_object()) fail(IMP_ERR_TOKENIZER, src, ": an added_tokens entry is not an object");
      auto id = a.find("id");
      auto content = a.find("content");
      if (!id || !content) fail(IMP_ERR_TOKENIZER, src, ": an added_tokens entry lacks \"id\" or \"content\"");
      Tokenizer::AddedToken tok;
      tok.id = token_index(*id, src, "added token id");
      tok.content = content->as_string("added token content");
      if (tok.content.empty()) fail(IMP_ERR_TOKENIZER, src, ": added token ", tok.id, " has empty content");
      if (tok::utf8_first_invalid(tok.content) != std::string::npos)
        fail(IMP_ERR_TOKENIZER, src, ": added token ", tok.id, " is not valid UTF-8");
      tok.special = flag(a, "special", false);
      tok.normalized = flag(a, "normalized", !tok.special);  // tokenizers' default for AddedToken
      tok.lstrip = flag(a, "lstrip", false);
      tok.rstrip = flag(a, "rstrip", false);
      if (flag(a, "single_word", false))
        fail(IMP_ERR_TOKENIZER, src, ": added token \"", tok.content, "\" uses single_word, which is not supported");
      n_vocab = std::max<int64_t>(n_vocab, int64_t(tok.id) + 1);
      t->added_.push_back(std::move(tok));
    }
  }

  // Normalizer, pre-tokenizer, decoder.
  if (auto n = root.find("normalizer")) read_normalizer(*n, src, &t->nfc_);
  PreTokenizerSpec spec;
  if (auto p = root.find("pre_tokenizer"); p && !p->is_null()) read_pre_tokenizer(*p, src, &spec);
  if (!spec.have_byte_level) fail(IMP_ERR_TOKENIZER, src, ": pre_tokenizer has no ByteLevel step (only byte-level BPE is supported)");
  t->split_ = spec.split;
  if (auto d = root.find("decoder"); d && !d->is_null()) {
    std::string type = type_of(*d, src, "decoder");
    if (type != "ByteLevel") fail(IMP_ERR_TOKENIZER, src, ": decoder type \"", type, "\" is not supported (only ByteLevel)");
  }
  // post_processor is deliberately not read: encode() adds no template tokens (see tokenizer.h).

  // Normalized added tokens are matched in normalized text, so their content is normalized too.
  for (auto& a : t->added_) {
    if (a.normalized && t->nfc_) a.content = tok::nfc(a.content);
  }
  std::stable_sort(t->added_.begin(), t->added_.end(),
                   [](const auto& x, const auto& y) { return x.content.size() > y.content.size(); });
  t->added_first_byte_.assign(256, 0);
  for (const auto& a : t->added_) t->added_first_byte_[static_cast<uint8_t>(a.content[0])] = 1;

  // Pieces by id: vocabulary tokens mapped back to bytes, added tokens verbatim (see Tokenizer::piece).
  t->pieces_.assign(size_t(n_vocab), std::string());
  t->special_.assign(size_t(n_vocab), 0);
  std::string bytes;
  for (const auto& [text, id] : vocab) {
    t->pieces_[id] = tok::byte_level_to_bytes(text, &bytes) ? bytes : text;
  }
  for (const auto& a : t->added_) {
    t->pieces_[a.id] = a.content;
    t->special_[a.id] = a.special;
  }
  t->bpe_ = std::make_unique<tok::Bpe>(std::move(vocab), merges, merge_ids, unk_id, flag(*model, "ignore_merges", false));
  return t;
}

std::unique_ptr<Tokenizer> Tokenizer::from_json(std::string json, const std::string& source) {
  // A tokenizer file's JSON errors are tokenizer errors to the caller.
  try {
    JsonDocument doc = JsonDocument::parse(std::move(json), source);
    return TokenizerLoader::build(doc.root(), source);
  } catch (const Error& e) {
    if (e.status() == IMP_ERR_BAD_JSON) throw Error(IMP_ERR_TOKENIZER, e.what());
    throw;
  }
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  if (!path_exists(path)) fail(IMP_ERR_NOT_FOUND, path, ": no such file or directory");
  if (!is_directory(path) && gguf::has_gguf_magic(path)) return load_gguf(path);
  std::string file = path;
  if (is_directory(path)) {
    file = join_path(path, "tokenizer.json");
    if (!path_exists(file)) fail(IMP_ERR_TOKENIZER, path, ": the directory has no tokenizer.json");
  }
  return from_json(read_file(file), file);
}

}  // namespace imp
