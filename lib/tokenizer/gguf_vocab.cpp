// The tokenizer from and to GGUF metadata (llama.cpp's tokenizer.ggml.* keys; see GgufVocab in tokenizer.h).
// Built from the same pieces as the tokenizer.json path (tok::Bpe, the Qwen split, NFC), so both give the same
// ids for the same vocabulary.
#include "core/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#include <algorithm>
#include <cstdint>
#include <unordered_map>

namespace imp {

namespace {

constexpr size_t kMaxVocab = size_t(1) << 24;  // as load.cpp: by-id tables stay bounded

const char* type_name(int32_t t) {
  switch (t) {
    case 0: return "undefined";
    case kGgufTokenNormal: return "normal";
    case kGgufTokenUnknown: return "unknown";
    case kGgufTokenControl: return "control";
    case kGgufTokenUserDefined: return "user-defined";
    case kGgufTokenUnused: return "unused";
    case kGgufTokenByte: return "byte";
    default: return "?";
  }
}

// tokenizer.ggml.pre names llama.cpp gives byte-level BPE pre-tokenizers that libimp implements: the split and
// whether Hugging Face normalizes with NFC first (GGUF does not record the normalizer; see tokenizer.h). Both
// Qwen tokenizer.json generations normalize with NFC.
bool pre_tokenizer_for(const std::string& pre, tok::SplitPattern* split, bool* nfc) {
  if (pre == "qwen2") {
    *split = tok::SplitPattern::Qwen;
    *nfc = true;
    return true;
  }
  if (pre == "qwen35") {
    *split = tok::SplitPattern::Qwen35;
    *nfc = true;
    return true;
  }
  return false;
}

// The inverse for writing: the tokenizer.ggml.pre name of a split with NFC, or nullptr when GGUF has none.
const char* pre_tokenizer_name(tok::SplitPattern split, bool nfc) {
  if (!nfc) return nullptr;
  if (split == tok::SplitPattern::Qwen) return "qwen2";
  if (split == tok::SplitPattern::Qwen35) return "qwen35";
  return nullptr;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf_vocab(const GgufVocab& v, const std::string& src) {
  if (v.model != "gpt2")
    fail(IMP_ERR_TOKENIZER, src, ": tokenizer.ggml.model \"", v.model, "\" is not supported (only \"gpt2\", byte-level BPE)");
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  if (!pre_tokenizer_for(v.pre, &t->split_, &t->nfc_))
    fail(IMP_ERR_TOKENIZER, src, ": tokenizer.ggml.pre \"", v.pre,
         "\" is not supported (only \"qwen2\" and \"qwen35\")");
  if (v.tokens.empty()) fail(IMP_ERR_TOKENIZER, src, ": tokenizer.ggml.tokens is empty");
  if (v.tokens.size() > kMaxVocab) fail(IMP_ERR_TOKENIZER, src, ": tokenizer.ggml.tokens has ", v.tokens.size(), " tokens, too many");
  if (!v.types.empty() && v.types.size() != v.tokens.size())
    fail(IMP_ERR_TOKENIZER, src, ": tokenizer.ggml.token_type has ", v.types.size(), " entries for ", v.tokens.size(), " tokens");

  const size_t n = v.tokens.size();
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(n * 2);
  t->pieces_.assign(n, std::string());
  t->special_.assign(n, 0);
  std::string bytes;
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = v.tokens[i];
    const int32_t type = v.types.empty() ? kGgufTokenNormal : v.types[i];
    const int32_t id = int32_t(i);
    switch (type) {
      case kGgufTokenNormal: {
        if (text.empty()) fail(IMP_ERR_TOKENIZER, src, ": token ", id, " is empty");
        if (!vocab.emplace(text, id).second)
          fail(IMP_ERR_TOKENIZER, src, ": token ", id, " \"", text, "\" repeats token ", vocab[text]);
        t->pieces_[i] = tok::byte_level_to_bytes(text, &bytes) ? bytes : text;
        break;
      }
      case kGgufTokenControl:
      case kGgufTokenUserDefined: {
        if (text.empty()) fail(IMP_ERR_TOKENIZER, src, ": ", type_name(type), " token ", id, " is empty");
        if (tok::utf8_first_invalid(text) != std::string::npos)
          fail(IMP_ERR_TOKENIZER, src, ": ", type_name(type), " token ", id, " is not valid UTF-8");
        AddedToken a;
        a.content = text;
        a.id = id;
        a.special = type == kGgufTokenControl;
        a.normalized = false;  // matched in the raw text (llama.cpp: pre-normalized)
        a.lstrip = a.rstrip = false;
        t->pieces_[i] = text;
        t->special_[i] = a.special;
        t->added_.push_back(std::move(a));
        break;
      }
      case kGgufTokenUnused:
        break;  // llama.cpp's [PADn] filler: no text of its own
      default:
        fail(IMP_ERR_TOKENIZER, src, ": token ", id, " has token_type ", type, " (", type_name(type),
             "), which a gpt2 vocabulary does not use");
    }
  }

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> merge_ids;
  merges.reserve(v.merges.size());
  merge_ids.reserve(v.merges.size());
  auto lookup = [&](const std::string& s, size_t k) {
    auto it = vocab.find(s);
    if (it == vocab.end())
      fail(IMP_ERR_TOKENIZER, src, ": tokenizer.ggml.merges[", k, "] names \"", s, "\", which is not a normal token");
    return it->second;
  };
  for (size_t k = 0; k < v.merges.size(); ++k) {
    const std::string& m = v.merges[k];
    size_t sp = m.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == m.size() || m.find(' ', sp + 1) != std::string::npos)
      fail(IMP_ERR_TOKENIZER, src, ": tokenizer.ggml.merges[", k, "] \"", m, "\" is not two tokens separated by one space");
    std::string a = m.substr(0, sp), b = m.substr(sp + 1);
    merges.emplace_back(lookup(a, k), lookup(b, k));
    merge_ids.push_back(lookup(a + b, k));
  }

  std::stable_sort(t->added_.begin(), t->added_.end(),
                   [](const auto& x, const auto& y) { return x.content.size() > y.content.size(); });
  t->added_first_byte_.assign(256, 0);
  for (const auto& a : t->added_) t->added_first_byte_[static_cast<uint8_t>(a.content[0])] = 1;
  t->bpe_ = std::make_unique<tok::Bpe>(std::move(vocab), merges, merge_ids, -1, false);
  return t;
}

std::unique_ptr<Tokenizer> Tokenizer::load_gguf(const std::string& path) {
  std::unique_ptr<gguf::File> f = gguf::File::open(path);
  auto string_key = [&](const char* key) {
    const gguf::Value* v = f->find(key);
    if (!v) fail(IMP_ERR_TOKENIZER, path, ": no ", key, " (the file carries no tokenizer)");
    if (v->type != gguf::ValueType::STRING)
      fail(IMP_ERR_TOKENIZER, path, ": ", key, " is a ", gguf::value_type_name(v->type), ", not a string");
    return v->str;
  };
  auto string_array = [&](const char* key, std::vector<std::string>* out) {
    const gguf::Value* v = f->find(key);
    if (!v) fail(IMP_ERR_TOKENIZER, path, ": no ", key);
    if (v->type != gguf::ValueType::ARRAY || v->elem != gguf::ValueType::STRING)
      fail(IMP_ERR_TOKENIZER, path, ": ", key, " is not an array of strings");
    out->reserve(v->items.size());
    for (const gguf::Value& s : v->items) out->push_back(s.str);
  };
  GgufVocab voc;
  voc.model = string_key("tokenizer.ggml.model");
  voc.pre = string_key("tokenizer.ggml.pre");
  string_array("tokenizer.ggml.tokens", &voc.tokens);
  string_array("tokenizer.ggml.merges", &voc.merges);
  if (const gguf::Value* ty = f->find("tokenizer.ggml.token_type")) {
    if (ty->type != gguf::ValueType::ARRAY)
      fail(IMP_ERR_TOKENIZER, path, ": tokenizer.ggml.token_type is not an array");
    voc.types.reserve(ty->n);
    for (uint64_t i = 0; i < ty->n; ++i) {
      auto x = ty->int_at(i);
      if (!x || *x < INT32_MIN || *x > INT32_MAX)
        fail(IMP_ERR_TOKENIZER, path, ": tokenizer.ggml.token_type is not an array of integers");
      voc.types.push_back(int32_t(*x));
    }
  }
  return from_gguf_vocab(voc, path);
}

GgufVocab Tokenizer::gguf_vocab(int32_t n_tokens) const {
  const char* src = "gguf_vocab";
  if (n_tokens < n_vocab())
    fail(IMP_ERR_TOKENIZER, src, ": the tokenizer has ", n_vocab(), " ids, more than the model's ", n_tokens);
  const char* pre = pre_tokenizer_name(split_, nfc_);
  if (!pre)
    fail(IMP_ERR_TOKENIZER, src, ": only Qwen's pre-tokenizers (the Qwen2/Qwen3 or the Qwen3.5 Split regex, after "
         "NFC; tokenizer.ggml.pre \"qwen2\" or \"qwen35\") can be written to GGUF");
  if (bpe_->unk_id() >= 0) fail(IMP_ERR_TOKENIZER, src, ": GGUF cannot carry a BPE unk_token");
  if (bpe_->ignore_merges()) fail(IMP_ERR_TOKENIZER, src, ": GGUF (pre \"", pre, "\") cannot carry ignore_merges");
  GgufVocab v;
  v.model = "gpt2";
  v.pre = pre;
  v.tokens.assign(size_t(n_tokens), std::string());
  v.types.assign(size_t(n_tokens), 0);
  for (const auto& [text, id] : bpe_->vocab()) {
    v.tokens[id] = text;
    v.types[id] = kGgufTokenNormal;
  }
  for (const AddedToken& a : added_) {
    if (a.lstrip || a.rstrip)
      fail(IMP_ERR_TOKENIZER, src, ": added token \"", a.content, "\" has lstrip / rstrip, which GGUF cannot carry");
    if (v.types[a.id] == kGgufTokenNormal && v.tokens[a.id] != tok::bytes_to_byte_level(a.content))
      fail(IMP_ERR_TOKENIZER, src, ": id ", a.id, " is both vocabulary token \"", v.tokens[a.id],
           "\" and added token \"", a.content, "\"");
    v.tokens[a.id] = a.content;
    v.types[a.id] = a.special ? kGgufTokenControl : kGgufTokenUserDefined;
  }
  for (int32_t i = 0; i < n_tokens; ++i) {
    if (v.types[i] == 0) {
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";
      v.types[i] = kGgufTokenUnused;
    }
  }
  std::vector<const std::string*> text_of(size_t(n_vocab()), nullptr);
  for (const auto& [text, id] : bpe_->vocab()) text_of[id] = &text;
  for (const auto& [a, b] : bpe_->merges_by_rank()) v.merges.push_back(*text_of[a] + " " + *text_of[b]);
  return v;
}

}  // namespace imp
