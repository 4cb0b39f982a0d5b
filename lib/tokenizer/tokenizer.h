// imp::Tokenizer: a Hugging Face byte-level BPE tokenizer (tokenizer.json as Qwen2/Qwen3 ship it), text in and
// text out. Encoding follows tokenizers' pipeline: added tokens are cut out first, the rest is NFC-normalized,
// split by the pre-tokenizer regex, mapped to byte-level symbols and merged by BPE. Immutable after load and
// safe to share between threads (the word cache locks).
#pragma once

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenize.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace imp {

class Tokenizer {
 public:
  // path: a tokenizer.json file or a directory holding one. Throws imp::Error: IMP_ERR_NOT_FOUND (no such
  // path), IMP_ERR_IO (unreadable), IMP_ERR_TOKENIZER ("<path>: <what>" for a missing or malformed file, invalid
  // JSON included, or a feature libimp does not implement).
  static std::unique_ptr<Tokenizer> load(const std::string& path);
  // The same from JSON text; source names it in messages.
  static std::unique_ptr<Tokenizer> from_json(std::string json, const std::string& source);

  // Token ids of UTF-8 text. Added tokens that are not special are always recognised; special ones only with
  // parse_special (otherwise their text is tokenized like any other). Nothing is prepended or appended (the
  // post-processor is not applied: callers build their own templates). Text that is not valid UTF-8 throws
  // IMP_ERR_INVALID_ARGUMENT naming the byte offset: Hugging Face only accepts valid strings, and guessing a
  // repair would make ids that no reference produces.
  std::vector<int32_t> encode(std::string_view text, bool parse_special) const;

  // The bytes of a token: a vocabulary token's byte-level text mapped back to raw bytes (which may be part of a
  // UTF-8 sequence only), an added token's content verbatim. An id without a token gives "". Throws
  // IMP_ERR_TOKEN_OUT_OF_RANGE for id < 0 or >= n_vocab().
  const std::string& piece(int32_t id) const;
  // Concatenated pieces; with skip_special, special added tokens are left out.
  std::string decode(const int32_t* ids, size_t n, bool skip_special) const;

  int32_t n_vocab() const { return int32_t(pieces_.size()); }
  bool is_special(int32_t id) const { return id >= 0 && id < n_vocab() && special_[id]; }
  // The id of the token whose text is exactly `text` (an added token's content, else a vocabulary token whose
  // bytes are `text`), or -1.
  int32_t token_id(std::string_view text) const;

  struct AddedToken {
    std::string content;
    int32_t id;
    bool special, normalized, lstrip, rstrip;
  };

 private:
  Tokenizer() = default;
  // Cuts added tokens out of text (those whose `normalized` flag equals `normalized`), leftmost-longest like
  // tokenizers' Aho-Corasick matcher; the gaps go to text_fn, the tokens' ids to out.
  template <typename TextFn>
  void split_added(std::string_view text, bool normalized, bool parse_special, std::vector<int32_t>& out,
                   TextFn&& text_fn) const;
  void encode_normalized(std::string_view text, std::vector<int32_t>& out) const;

  std::unique_ptr<tok::Bpe> bpe_;
  tok::SplitPattern split_ = tok::SplitPattern::None;
  bool nfc_ = false;
  std::vector<AddedToken> added_;          // sorted by content length, longest first
  std::vector<std::string> pieces_;        // by id
  std::vector<uint8_t> special_;           // by id
  std::vector<uint8_t> added_first_byte_;  // 256 flags: some added token starts with this byte

  friend class TokenizerLoader;
};

// Turns a token stream's pieces into text that never ends inside a UTF-8 sequence: an incomplete sequence at
// the end of a piece is held back until the next piece completes it. Bytes that can never become valid UTF-8 are
// passed through as they are, so the concatenated output always equals Tokenizer::decode of the same ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false) : tok_(tok), skip_special_(skip_special) {}
  // The text that became complete with this token (possibly "").
  std::string push(int32_t id);
  // Whatever is still held back (an incomplete sequence at the end of the stream); resets the decoder.
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace imp
