// The C ABI of the tokenizer section of include/imp/imp.h. Every function runs through imp::guard (errors become
// a status and the thread's last-error message) and reports sizes before writing, so nothing is truncated.
#include "api/guard.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

struct imp_tokenizer {
  std::unique_ptr<imp::Tokenizer> tok;
};

using imp::fail;
using imp::guard;
using imp::require;

namespace {

// Copies bytes out when they fit; the size is reported either way.
void copy_out(const std::string& bytes, char* buf, size_t capacity, size_t* n_bytes) {
  *n_bytes = bytes.size();
  if (bytes.size() > capacity)
    fail(IMP_ERR_BUFFER_TOO_SMALL, "output needs ", bytes.size(), " bytes, capacity is ", capacity);
  if (!bytes.empty()) std::memcpy(buf, bytes.data(), bytes.size());
}

}  // namespace

extern "C" {

imp_status imp_tokenizer_load(imp_tokenizer** out, const char* path) {
  if (out) *out = nullptr;
  return guard([&] {
    require(out, "out");
    require(path, "path");
    auto handle = std::make_unique<imp_tokenizer>();
    // A GGUF file (by its magic) gives the tokenizer in its tokenizer.ggml.* metadata; anything else is a
    // tokenizer.json or a directory holding one.
    handle->tok = imp::Tokenizer::load(path);
    *out = handle.release();
  });
}

void imp_tokenizer_free(imp_tokenizer* tok) { delete tok; }

int32_t imp_tokenizer_n_vocab(const imp_tokenizer* tok) { return tok ? tok->tok->n_vocab() : -1; }

imp_status imp_tokenize(const imp_tokenizer* tok, const char* text, size_t text_len, int32_t parse_special,
                        imp_token* tokens, size_t capacity, size_t* n_tokens) {
  return guard([&] {
    require(n_tokens, "n_tokens");
    *n_tokens = 0;
    require(tok, "tok");
    if (text_len > 0) require(text, "text");
    if (capacity > 0) require(tokens, "tokens");
    std::vector<int32_t> ids = tok->tok->encode(std::string_view(text ? text : "", text_len), parse_special != 0);
    *n_tokens = ids.size();
    if (ids.size() > capacity)
      fail(IMP_ERR_BUFFER_TOO_SMALL, "the text makes ", ids.size(), " tokens, capacity is ", capacity);
    if (!ids.empty()) std::memcpy(tokens, ids.data(), ids.size() * sizeof(imp_token));
  });
}

imp_status imp_detokenize(const imp_tokenizer* tok, const imp_token* tokens, size_t n_tokens, int32_t skip_special,
                          char* buf, size_t capacity, size_t* n_bytes) {
  return guard([&] {
    require(n_bytes, "n_bytes");
    *n_bytes = 0;
    require(tok, "tok");
    if (n_tokens > 0) require(tokens, "tokens");
    if (capacity > 0) require(buf, "buf");
    copy_out(tok->tok->decode(tokens, n_tokens, skip_special != 0), buf, capacity, n_bytes);
  });
}

imp_status imp_token_to_piece(const imp_tokenizer* tok, imp_token token, char* buf, size_t capacity,
                              size_t* n_bytes) {
  return guard([&] {
    require(n_bytes, "n_bytes");
    *n_bytes = 0;
    require(tok, "tok");
    if (capacity > 0) require(buf, "buf");
    copy_out(tok->tok->piece(token), buf, capacity, n_bytes);
  });
}

imp_status imp_tokenizer_token_id(const imp_tokenizer* tok, const char* text, imp_token* out) {
  return guard([&] {
    require(out, "out");
    *out = -1;
    require(tok, "tok");
    require(text, "text");
    int32_t id = tok->tok->token_id(text);
    if (id < 0) fail(IMP_ERR_NOT_FOUND, "no token is exactly \"", text, "\"");
    *out = id;
  });
}

int32_t imp_tokenizer_is_special(const imp_tokenizer* tok, imp_token token) {
  return tok && tok->tok->is_special(token) ? 1 : 0;
}

size_t imp_utf8_incomplete_tail(const char* bytes, size_t n) {
  return bytes ? imp::tok::utf8_incomplete_tail(bytes, n) : 0;
}

}  // extern "C"
