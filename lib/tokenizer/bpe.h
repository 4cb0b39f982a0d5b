// The BPE model of a byte-level tokenizer: merges applied by rank to one pre-token at a time, with a cache of
// recent words (natural text repeats its words a lot).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace imp::tok {

class Bpe {
 public:
  // vocab maps a token's byte-level text to its id. Each merge is a pair of ids; merge_ids[k] is the id of the
  // concatenation, and k is the merge's rank. unk_id < 0: bytes missing from the vocab are dropped, as Hugging
  // Face does when the model has no unk_token. ignore_merges: a word that is itself a token is not split.
  Bpe(std::unordered_map<std::string, int32_t> vocab, const std::vector<std::pair<int32_t, int32_t>>& merges,
      const std::vector<int32_t>& merge_ids, int32_t unk_id, bool ignore_merges);

  // Appends the ids of one pre-token (raw bytes; mapped to byte-level symbols here) to out.
  void encode_word(std::string_view raw, std::vector<int32_t>& out) const;

  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }
  // The merges as (left id, right id) in rank order (a pair listed twice appears once, at its kept rank).
  std::vector<std::pair<int32_t, int32_t>> merges_by_rank() const;
  int32_t unk_id() const { return unk_id_; }
  bool ignore_merges() const { return ignore_merges_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  const Merge* find_merge(int32_t a, int32_t b) const;
  void merge_word(std::string_view raw, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_id_[256];  // the id of each single byte's token, or -1
  int32_t unk_id_;
  bool ignore_merges_;

  // Words of up to kMaxCachedBytes bytes; the cache is dropped whole when it reaches kCacheCapacity entries, which
  // keeps it bounded without LRU bookkeeping. Guarded by a mutex: a tokenizer is shared across threads.
  static constexpr size_t kMaxCachedBytes = 256;
  static constexpr size_t kCacheCapacity = 1 << 16;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace imp::tok
