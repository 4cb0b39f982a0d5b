#include "tokenizer/bpe.h"

#include "tokenizer/unicode.h"

#include <algorithm>
#include <queue>

namespace imp::tok {

Bpe::Bpe(std::unordered_map<std::string, int32_t> vocab, const std::vector<std::pair<int32_t, int32_t>>& merges,
         const std::vector<int32_t>& merge_ids, int32_t unk_id, bool ignore_merges)
    : vocab_(std::move(vocab)), unk_id_(unk_id), ignore_merges_(ignore_merges) {
  merges_.reserve(merges.size() * 2);
  for (size_t k = 0; k < merges.size(); ++k) {
    // A pair listed twice takes its last rank, as Hugging Face's loader does (it collects into a hash map).
    merges_.insert_or_assign(key(merges[k].first, merges[k].second), Merge{int32_t(k), merge_ids[k]});
  }
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(byte_to_unicode_utf8(uint8_t(b)));
    byte_id_[b] = it == vocab_.end() ? -1 : it->second;
  }
}

std::vector<std::pair<int32_t, int32_t>> Bpe::merges_by_rank() const {
  std::vector<std::pair<int32_t, uint64_t>> ranked;
  ranked.reserve(merges_.size());
  for (const auto& [k, m] : merges_) ranked.emplace_back(m.rank, k);
  std::sort(ranked.begin(), ranked.end());
  std::vector<std::pair<int32_t, int32_t>> out;
  out.reserve(ranked.size());
  for (const auto& [rank, k] : ranked) out.emplace_back(int32_t(uint32_t(k >> 32)), int32_t(uint32_t(k)));
  return out;
}

const Bpe::Merge* Bpe::find_merge(int32_t a, int32_t b) const {
  auto it = merges_.find(key(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

void Bpe::encode_word(std::string_view raw, std::vector<int32_t>& out) const {
  if (raw.empty()) return;
  const bool cacheable = raw.size() <= kMaxCachedBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(std::string(raw));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t start = out.size();
  merge_word(raw, out);
  if (cacheable) {
    std::vector<int32_t> ids(out.begin() + start, out.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();
    cache_.emplace(std::string(raw), std::move(ids));
  }
}

// Hugging Face's Word::merge_all: a min-heap of candidate merges ordered by (rank, position) over a doubly
// linked list of symbols. A popped candidate is stale when its left symbol was absorbed, has no right neighbour
// any more, or the pair there no longer makes the same token; stale entries are skipped, not removed.
void Bpe::merge_word(std::string_view raw, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    auto it = vocab_.find(bytes_to_byte_level(raw));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  std::vector<Symbol> sym;
  sym.reserve(raw.size());
  for (char c : raw) {
    int32_t id = byte_id_[static_cast<uint8_t>(c)];
    if (id < 0) id = unk_id_;
    if (id < 0) continue;  // no token for this byte and no unk_token: dropped
    int32_t idx = int32_t(sym.size());
    sym.push_back(Symbol{id, idx - 1, idx + 1, true});
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  for (size_t i = 0; i + 1 < sym.size(); ++i) {
    if (const Merge* m = find_merge(sym[i].id, sym[i + 1].id)) heap.push({m->rank, int32_t(i), m->new_id});
  }
  while (!heap.empty()) {
    Candidate top = heap.top();
    heap.pop();
    Symbol& left = sym[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[left.next];
    const Merge* m = find_merge(left.id, right.id);
    if (!m || m->new_id != top.new_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* p = find_merge(sym[left.prev].id, left.id)) heap.push({p->rank, left.prev, p->new_id});
    }
    if (left.next >= 0) {
      if (const Merge* n = find_merge(left.id, sym[left.next].id)) heap.push({n->rank, top.pos, n->new_id});
    }
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace imp::tok
