// Encoding and decoding (loading is in load.cpp).
#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "tokenizer/unicode.h"

#include <cstring>

namespace imp {

namespace {

bool space_at(std::string_view s, size_t i, size_t* len) {
  uint32_t cp;
  *len = tok::utf8_decode(s, i, &cp);
  return *len != 0 && tok::char_class(cp) == tok::CharClass::Space;
}

}  // namespace

// tokenizers finds added tokens with a leftmost-longest Aho-Corasick automaton and walks its non-overlapping
// matches. A special token seen while special tokens are not parsed is skipped, but its bytes stay consumed (no
// other added token can match inside it), which this scan reproduces by jumping past it as plain text.
template <typename TextFn>
void Tokenizer::split_added(std::string_view text, bool normalized, bool parse_special, std::vector<int32_t>& out,
                            TextFn&& text_fn) const {
  size_t done = 0;  // end of the last token emitted: text before it has been handed on
  size_t p = 0;
  while (p < text.size()) {
    if (!added_first_byte_[static_cast<uint8_t>(text[p])]) {
      ++p;
      continue;
    }
    const AddedToken* match = nullptr;
    for (const AddedToken& a : added_) {  // longest first, so the first hit is the longest at p
      if (a.normalized != normalized || a.content.size() > text.size() - p) continue;
      if (std::memcmp(text.data() + p, a.content.data(), a.content.size()) == 0) {
        match = &a;
        break;
      }
    }
    if (!match) {
      ++p;
      continue;
    }
    size_t start = p, stop = p + match->content.size();
    p = stop;
    if (match->special && !parse_special) continue;
    size_t len;
    if (match->lstrip) {  // swallow whitespace before the token (not past the previous token)
      while (start > done) {
        size_t k = start - 1;
        while (k > done && (static_cast<uint8_t>(text[k]) & 0xC0) == 0x80) --k;
        if (!space_at(text, k, &len)) break;
        start = k;
      }
    }
    if (match->rstrip) {
      while (stop < text.size() && space_at(text, stop, &len)) stop += len;
      p = stop;
    }
    if (start > done) text_fn(text.substr(done, start - done));
    out.push_back(match->id);
    done = stop;
  }
  if (done < text.size()) text_fn(text.substr(done));
}

void Tokenizer::encode_normalized(std::string_view text, std::vector<int32_t>& out) const {
  for (const auto& [b, e] : tok::pre_tokenize(text, split_)) bpe_->encode_word(text.substr(b, e - b), out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  size_t bad = tok::utf8_first_invalid(text);
  if (bad != std::string_view::npos)
    fail(IMP_ERR_INVALID_ARGUMENT, "text is not valid UTF-8 (ill-formed sequence at byte ", bad, ")");
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  // Tokens flagged normalized=false are cut from the raw text; each gap is normalized on its own and then
  // searched for the normalized=true tokens, as tokenizers' AddedVocabulary::extract_and_normalize does.
  split_added(text, false, parse_special, out, [&](std::string_view gap) {
    auto rest = [&](std::string_view piece) { encode_normalized(piece, out); };
    if (nfc_) {
      std::string norm = tok::nfc(gap);
      split_added(norm, true, parse_special, out, rest);
    } else {
      split_added(gap, true, parse_special, out, rest);
    }
  });
  return out;
}

const std::string& Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) fail(IMP_ERR_TOKEN_OUT_OF_RANGE, "token ", id, " is outside [0, ", n_vocab(), ")");
  return pieces_[id];
}

std::string Tokenizer::decode(const int32_t* ids, size_t n, bool skip_special) const {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = piece(ids[i]);
    if (!(skip_special && special_[ids[i]])) out += p;
  }
  return out;
}

int32_t Tokenizer::token_id(std::string_view text) const {
  for (const AddedToken& a : added_) {
    if (a.content == text) return a.id;
  }
  auto it = bpe_->vocab().find(tok::bytes_to_byte_level(text));
  return it == bpe_->vocab().end() ? -1 : it->second;
}

std::string StreamDecoder::push(int32_t id) {
  const std::string& p = tok_.piece(id);
  if (!(skip_special_ && tok_.is_special(id))) pending_ += p;
  size_t keep = tok::utf8_incomplete_tail(pending_.data(), pending_.size());
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace imp
