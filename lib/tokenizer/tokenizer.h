// imp::Tokenizer: a Hugging Face byte-level BPE tokenizer (tokenizer.json as Qwen2 to Qwen3.6 ship it), text in and
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

// A tokenizer as GGUF files carry it, in llama.cpp's layout (convert_hf_to_gguf.py's _set_vocab_gpt2):
//   tokenizer.ggml.model       "gpt2" (byte-level BPE; the only model accepted)
//   tokenizer.ggml.pre         the pre-tokenizer by name: "qwen2" (Qwen2 / Qwen3's Split regex) or "qwen35"
//                              (Qwen3.5 / Qwen3.6's, whose letter runs take combining marks: [\p{L}\p{M}]+); any
//                              other name is refused, naming it.
//   tokenizer.ggml.tokens      every id's text: vocabulary tokens in byte-level form ("Ġthe"), added tokens as
//                              their content
//   tokenizer.ggml.token_type  per id: 1 normal (BPE vocabulary), 3 control (an added token, special),
//                              4 user-defined (an added token, not special), 5 unused (llama.cpp's "[PADn]"
//                              filler up to the model's vocab_size: no text, piece ""); others are refused.
//                              Absent: every token normal.
//   tokenizer.ggml.merges      "a b" strings by rank
// GGUF has no normalizer field. Hugging Face applies Qwen's NFC normalizer before splitting; llama.cpp does not
// normalize at all for BPE vocabularies, so its ids differ from Hugging Face's on text that is not in NFC. libimp
// follows Hugging Face: "qwen2" and "qwen35" imply NFC, so a GGUF tokenizer gives exactly the ids of the
// tokenizer.json it was converted from (the committed goldens, whose corpus has non-NFC text, decide this). Added
// tokens are matched in the raw text (llama.cpp's assumption that control and user-defined tokens are
// pre-normalized; HF's normalized=false), so an added token with lstrip / rstrip / normalized=true cannot be
// written to GGUF exactly.
struct GgufVocab {
  std::string model = "gpt2";
  std::string pre;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;  // empty: all normal
  std::vector<std::string> merges;
};

enum GgufTokenType : int32_t {
  kGgufTokenNormal = 1, kGgufTokenUnknown = 2, kGgufTokenControl = 3, kGgufTokenUserDefined = 4,
  kGgufTokenUnused = 5, kGgufTokenByte = 6,
};

class Tokenizer {
 public:
  // path: a GGUF file (recognised by its magic; the tokenizer comes from its tokenizer.ggml.* metadata, see
  // GgufVocab), a tokenizer.json file or a directory holding one. Throws imp::Error: IMP_ERR_NOT_FOUND (no such
  // path), IMP_ERR_IO (unreadable), IMP_ERR_TOKENIZER ("<path>: <what>" for a missing or malformed file, invalid
  // JSON included, or a feature libimp does not implement).
  static std::unique_ptr<Tokenizer> load(const std::string& path);
  // The same from JSON text; source names it in messages.
  static std::unique_ptr<Tokenizer> from_json(std::string json, const std::string& source);
  // From GGUF metadata arrays (see GgufVocab); source names it in messages. Missing or malformed pieces (no
  // tokens, a merge naming a token that is not a normal token, an unknown model / pre / token type, duplicate
  // normal tokens) throw IMP_ERR_TOKENIZER "<source>: <what>". n_vocab() is the tokens array's length.
  static std::unique_ptr<Tokenizer> from_gguf_vocab(const GgufVocab& v, const std::string& source);
  // A GGUF file's tokenizer: the file errors of gguf::File::open, IMP_ERR_TOKENIZER for absent or mistyped
  // tokenizer.ggml.* keys and everything from_gguf_vocab refuses.
  static std::unique_ptr<Tokenizer> load_gguf(const std::string& path);

  // This tokenizer as GGUF metadata, ids padded with unused "[PADn]" tokens up to n_tokens (the model's vocab
  // size; at least n_vocab()). Throws IMP_ERR_TOKENIZER for what GGUF cannot say: a pre-tokenizer other than
  // one of Qwen's regexes with NFC, an unk token, ignore_merges, added tokens with lstrip / rstrip; and for
  // n_tokens < n_vocab().
  GgufVocab gguf_vocab(int32_t n_tokens) const;

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
