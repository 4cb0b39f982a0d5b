#!/usr/bin/env python3
"""Train the bundled libimp demo model: a small Qwen3.5-architecture hybrid (Gated DeltaNet + gated full
attention, transformers' `qwen3_5` text model) with a jointly trained MTP ("NextN") head.

Runs on one GPU (written for an H100; torch 2.11, transformers 5.17, tokenizers 0.23, safetensors 0.8).
Deterministic from --seed up to GPU non-determinism (atomics in backward kernels).

    python3 tools/train/train.py --corpus .corpus --out /tmp/imp-demo --steps N

Steps:
  1. byte-level BPE tokenizer (Qwen2-style pre-tokenizer) trained on the train splits of the corpus
     (built by tools/train/prepare_corpus.py);
  2. Qwen3_5ForCausalLM + MTP head (see MTPHead below, libimp spec section 3), loss = CE + 0.3 * CE_mtp;
  3. held-out perplexity per source, MTP depth-1 accuracy, greedy-decoding MTP acceptance along the model's
     own greedy continuations (what libimp's greedy MTP should reproduce);
  4. Hugging Face layout: config.json, model-0000k-of-0000n.safetensors + model.safetensors.index.json (main
     weights and mtp.* in bf16), tokenizer.json, tokenizer_config.json, generation_config.json, train_log.txt,
     metrics.json, reference.json; then it re-loads the files with from_pretrained / AutoTokenizer and checks
     that logits and token ids match.
"""
import argparse
import json
import lzma
import math
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SOURCES = ["code", "docs", "kjv"]
MTP_LOSS_WEIGHT = 0.3

LOG_FILE = None


def log(*args):
    msg = " ".join(str(a) for a in args)
    print(msg, flush=True)
    if LOG_FILE is not None:
        LOG_FILE.write(msg + "\n")
        LOG_FILE.flush()


# ----------------------------------------------------------------------------------------------- corpus

def read_units(corpus, source, split):
    path = os.path.join(corpus, f"{source}.{split}.jsonl.xz")
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# -------------------------------------------------------------------------------------------- tokenizer

def train_tokenizer(texts, vocab_size):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, \
        processors, trainers
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(SPECIALS), min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(texts, trainer=trainer)
    # Specials go last, as in Qwen's vocabularies.
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    assert tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    return tok


def tokenizer_config(tok, max_len):
    added = {}
    for s in SPECIALS:
        added[str(tok.token_to_id(s))] = {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": max_len,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


# ------------------------------------------------------------------------------------------------ model

def build_config(args, vocab_size, eot_id):
    from transformers import Qwen3_5TextConfig
    n = args.layers
    layer_types = ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(n)]
    rot = int(args.head_dim * 0.25) // 2  # rotary frequency pairs (Qwen3.5: 32 -> [11, 11, 10])
    s1 = round(rot * 11 / 32)
    mrope = [s1, s1, rot - 2 * s1]  # text-only input makes M-RoPE plain 1-D RoPE
    kw = dict(
        vocab_size=vocab_size, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=n, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        head_dim=args.head_dim, hidden_act="silu", max_position_embeddings=args.max_positions,
        initializer_range=0.02, rms_norm_eps=1e-6, use_cache=True, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25,
                         "mrope_section": mrope, "mrope_interleaved": True},
        attention_bias=False, attention_dropout=0.0, linear_conv_kernel_dim=4,
        linear_key_head_dim=args.linear_dk, linear_value_head_dim=args.linear_dk,
        linear_num_key_heads=args.linear_k_heads, linear_num_value_heads=args.linear_v_heads,
        layer_types=layer_types, pad_token_id=None, bos_token_id=None, eos_token_id=eot_id,
    )
    try:
        cfg = Qwen3_5TextConfig(**kw, mtp_num_hidden_layers=1)
    except Exception as e:  # noqa: BLE001
        log("config: mtp_num_hidden_layers not accepted as kwarg (%s); set as attribute" % e)
        cfg = Qwen3_5TextConfig(**kw)
    cfg.mtp_num_hidden_layers = 1
    return cfg


class MTPHead(nn.Module):
    """One MTP ("NextN") step, libimp spec section 3 (DeepSeek-V3 pairing, Qwen3.5 naming):
        e = Norm(Embed(t_{p+1}); pre_fc_norm_embedding)
        h = Norm(h_p; pre_fc_norm_hidden)     h_p = main model's hidden at p AFTER its final norm
        x = fc(concat[e, h])                  embedding first, no bias
        x = full-attention decoder layer (transformers' own Qwen3_5DecoderLayer, dense MLP), RoPE position p
        logits = lm_head(Norm(x; norm))       -> predicts t_{p+2}
    Norms are transformers' zero-centred Qwen3_5RMSNorm (weight stored as offset, init 0)."""

    def __init__(self, config):
        super().__init__()
        from transformers.models.qwen3_5.modeling_qwen3_5 import Qwen3_5DecoderLayer, Qwen3_5RMSNorm
        H, eps = config.hidden_size, config.rms_norm_eps
        self.fc = nn.Linear(2 * H, H, bias=False)
        self.pre_fc_norm_embedding = Qwen3_5RMSNorm(H, eps=eps)
        self.pre_fc_norm_hidden = Qwen3_5RMSNorm(H, eps=eps)
        # layer_idx only selects the block kind (and a cache slot, unused here): take a full-attention index.
        full_idx = config.layer_types.index("full_attention")
        self.layers = nn.ModuleList([Qwen3_5DecoderLayer(config, full_idx)])
        assert self.layers[0].block_type == "full_attention"
        self.norm = Qwen3_5RMSNorm(H, eps=eps)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=config.initializer_range)
            elif isinstance(m, Qwen3_5RMSNorm):
                nn.init.zeros_(m.weight)

    def forward(self, next_embeds, hidden, position_embeddings):
        x = torch.cat([self.pre_fc_norm_embedding(next_embeds), self.pre_fc_norm_hidden(hidden)], dim=-1)
        x = self.fc(x)
        # attention_mask=None + sdpa => causal (is_causal); checked by check_causality().
        x = self.layers[0](x, position_embeddings=position_embeddings, attention_mask=None)
        if isinstance(x, tuple):
            x = x[0]
        return self.norm(x)


class Joint(nn.Module):
    def __init__(self, lm, mtp):
        super().__init__()
        self.lm = lm
        self.mtp = mtp

    def positions(self, x, B, T):
        pos = torch.arange(T, device=x.device).view(1, 1, T).expand(3, B, T)
        return self.lm.model.rotary_emb(x, pos)

    def forward(self, inp, nxt):
        """inp = t_0..t_{T-1}; nxt = t_1..t_T. Returns main logits (predict t_{p+1}) and MTP logits
        (row p from (t_{p+1}, h_p), predict t_{p+2})."""
        B, T = inp.shape
        h = self.lm.model(input_ids=inp, use_cache=False).last_hidden_state  # post final norm
        logits = self.lm.lm_head(h)
        e = self.lm.model.embed_tokens(nxt)
        hm = self.mtp(e, h, self.positions(h, B, T))
        return logits, self.lm.lm_head(hm)


def loss_fn(logits, mtp_logits, nxt, nxt2):
    V = logits.shape[-1]
    lm = F.cross_entropy(logits.float().view(-1, V), nxt.reshape(-1))
    lmtp = F.cross_entropy(mtp_logits.float().view(-1, V), nxt2.reshape(-1))
    return lm, lmtp


# ----------------------------------------------------------------------------------------------- helpers

def count_params(module):
    seen, n = set(), 0
    for p in module.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def lr_at(step, total, warmup, peak, floor_frac):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor_frac + (1 - floor_frac) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def evaluate(joint, stream, T, batch, device):
    """Non-overlapping windows of T+2 tokens (stride T). Returns mean CE (main, mtp), top-1 accuracies and
    the rate at which the MTP draft at row p equals the main model's argmax at p+1 (teacher-forced)."""
    n = stream.numel()
    starts = list(range(0, max(1, n - (T + 2)) + 1, T))
    tot = {"ce": 0.0, "ce_mtp": 0.0, "acc": 0, "acc_mtp": 0, "agree": 0, "n": 0, "n_agree": 0}
    for i in range(0, len(starts), batch):
        idx = torch.tensor(starts[i:i + batch], device=device)
        w = stream[idx[:, None] + torch.arange(min(T + 2, n), device=device)]
        inp, nxt, nxt2 = w[:, :-2], w[:, 1:-1], w[:, 2:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, mlog = joint(inp, nxt)
        logits, mlog = logits.float(), mlog.float()
        V = logits.shape[-1]
        tot["ce"] += F.cross_entropy(logits.view(-1, V), nxt.reshape(-1), reduction="sum").item()
        tot["ce_mtp"] += F.cross_entropy(mlog.view(-1, V), nxt2.reshape(-1), reduction="sum").item()
        am, amt = logits.argmax(-1), mlog.argmax(-1)
        tot["acc"] += (am == nxt).sum().item()
        tot["acc_mtp"] += (amt == nxt2).sum().item()
        tot["agree"] += (amt[:, :-1] == am[:, 1:]).sum().item()
        tot["n"] += nxt.numel()
        tot["n_agree"] += amt[:, :-1].numel()
    N = tot["n"]
    return {"tokens": N, "ce": tot["ce"] / N, "ppl": math.exp(tot["ce"] / N), "ce_mtp": tot["ce_mtp"] / N,
            "top1": tot["acc"] / N, "mtp_top1": tot["acc_mtp"] / N, "mtp_agree_main": tot["agree"] / tot["n_agree"]}


@torch.no_grad()
def full_forward(joint, ids, device):
    """fp32, no autocast, no cache: main argmax per row and MTP draft per row (row p from (t_{p+1}, h_p))."""
    x = torch.tensor([ids], device=device)
    h = joint.lm.model(input_ids=x, use_cache=False).last_hidden_state
    logits = joint.lm.lm_head(h)
    nxt = x[:, 1:]
    hm = joint.mtp(joint.lm.model.embed_tokens(nxt), h[:, :-1], joint.positions(h, 1, nxt.shape[1]))
    return logits[0], joint.lm.lm_head(hm)[0]


@torch.no_grad()
def greedy_and_acceptance(joint, prompt, new_tokens, device, eot_id):
    ids = list(prompt)
    for _ in range(new_tokens):
        logits, _ = full_forward(joint, ids, device)
        t = int(logits[-1].argmax())
        ids.append(t)
        if t == eot_id:
            break
    _, mlog = full_forward(joint, ids, device)
    draft = mlog.argmax(-1).tolist()  # draft[p] predicts ids[p+2]
    P, n = len(prompt), len(ids)
    # all-rows rate over generated positions j >= P+1 (draft made from row j-2)
    rows = [(draft[j - 2] == ids[j]) for j in range(P + 1, n)]
    # simulate greedy depth-1 speculative decoding along the same (deterministic) greedy path
    pos, drafts, acc, steps = P, 0, 0, 0  # ids[pos] was just produced by the main model
    steps += 1
    while pos + 1 < n:
        drafts += 1
        steps += 1
        if draft[pos - 1] == ids[pos + 1]:
            acc += 1
            pos += 2  # accepted draft + bonus token
        else:
            pos += 1  # correction token
    return ids, draft, {"rows": len(rows), "row_match": sum(rows), "drafts": drafts, "accepted": acc,
                        "verify_steps": steps, "tokens": n - P}


def bf16_round_(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.bfloat16).to(p.dtype))


def check_causality(joint, vocab, device):
    g = torch.Generator(device="cpu").manual_seed(7)
    x = torch.randint(0, vocab, (1, 66), generator=g).to(device)
    y = x.clone()
    y[0, 41] = (y[0, 41] + 1) % vocab
    with torch.no_grad():
        la, ma = joint(x[:, :-1], x[:, 1:])
        lb, mb = joint(y[:, :-1], y[:, 1:])
    # main rows < 41 do not see t_41; MTP row p sees t_{p+1}, so rows < 40 must not change
    d_main = (la[0, :41] - lb[0, :41]).abs().max().item()
    d_mtp = (ma[0, :40] - mb[0, :40]).abs().max().item()
    ch_main = (la[0, 41:] - lb[0, 41:]).abs().max().item()
    ch_mtp = (ma[0, 40:] - mb[0, 40:]).abs().max().item()
    ok = d_main < 1e-4 and d_mtp < 1e-4 and ch_main > 0 and ch_mtp > 0
    log(f"causality check: main past diff {d_main:.2e} (future {ch_main:.2e}), mtp past diff {d_mtp:.2e} "
        f"(future {ch_mtp:.2e}) -> {'PASS' if ok else 'FAIL'}")
    return ok


def save_sharded(state, out, max_shard_bytes):
    from safetensors.torch import save_file
    names = list(state.keys())
    shards, cur, cur_bytes = [], [], 0
    for n in names:
        b = state[n].numel() * state[n].element_size()
        if cur and cur_bytes + b > max_shard_bytes:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(n)
        cur_bytes += b
    shards.append(cur)
    weight_map, total = {}, 0
    for k, group in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file({n: state[n].contiguous() for n in group}, os.path.join(out, fname), metadata={"format": "pt"})
        for n in group:
            weight_map[n] = fname
            total += state[n].numel() * state[n].element_size()
    index = {"metadata": {"total_size": total, "total_parameters": sum(t.numel() for t in state.values())},
             "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    return [f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors" for k in range(len(shards))]


# -------------------------------------------------------------------------------------------------- main

def main():
    global LOG_FILE
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".corpus")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--linear-k-heads", type=int, default=4)
    ap.add_argument("--linear-v-heads", type=int, default=8)
    ap.add_argument("--linear-dk", type=int, default=32)
    ap.add_argument("--max-positions", type=int, default=2048)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--lr-floor", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--max-train-seconds", type=float, default=1e9,
                    help="safety stop (logged; breaks determinism only if it triggers)")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--eval-every", type=int, default=300, help="held-out CE during training (logged only)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--compile-bench", type=int, default=0, help="after everything, time N torch.compile steps")
    ap.add_argument("--gen-prompts", type=int, default=3, help="greedy prompts per source for acceptance")
    ap.add_argument("--gen-tokens", type=int, default=96)
    args = ap.parse_args()

    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    LOG_FILE = open(os.path.join(args.out, "train_log.txt"), "w")
    import safetensors
    import tokenizers
    import transformers
    log(f"libimp demo model training | torch {torch.__version__} transformers {transformers.__version__} "
        f"tokenizers {tokenizers.__version__} safetensors {safetensors.__version__} python {sys.version.split()[0]}")
    log("args:", json.dumps(vars(args), sort_keys=True))
    device = "cuda"
    log("device:", torch.cuda.get_device_name(0))
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.cuda.manual_seed_all(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    # ---- corpus + tokenizer
    with open(os.path.join(args.corpus, "MANIFEST.json")) as f:
        manifest = json.load(f)
    log("corpus packages:", json.dumps(manifest["packages"], sort_keys=True))
    units = {(s, sp): read_units(args.corpus, s, sp) for s in SOURCES for sp in ("train", "heldout")}
    train_texts = [u["text"] for s in SOURCES for u in units[(s, "train")]]
    t0 = time.time()
    tok = train_tokenizer(train_texts, args.vocab)
    eot = tok.token_to_id("<|endoftext|>")
    log(f"tokenizer: vocab {tok.get_vocab_size()} eot {eot} trained in {time.time() - t0:.1f}s")
    tok_path = os.path.join(args.out, "tokenizer.json")
    tok.save(tok_path)
    # Match Qwen2's tokenizer.json flags exactly (ByteLevel pieces without prefix space / offset trimming / regex);
    # the flags do not change ids or decoding, but C++ readers then see the familiar layout.
    with open(tok_path) as f:
        tj = json.load(f)
    for part in (tj["pre_tokenizer"]["pretokenizers"][1], tj["post_processor"], tj["decoder"]):
        part.update({"add_prefix_space": False, "trim_offsets": False, "use_regex": False})
    with open(tok_path, "w") as f:
        json.dump(tj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    probe = "def f(x):\n    return x  # 'tis\n\nAnd God said, Let there be light.<|endoftext|>"
    assert tok.decode(tok.encode(probe).ids, skip_special_tokens=False) == probe
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(tok, args.max_positions), f, indent=2)
        f.write("\n")

    t0 = time.time()
    streams, stats = {}, {}
    for (s, sp), us in units.items():
        enc = tok.encode_batch([u["text"] for u in us], add_special_tokens=False)
        ids = []
        for e in enc:
            ids.extend(e.ids)
            ids.append(eot)
        streams[(s, sp)] = torch.tensor(ids, dtype=torch.long, device=device)
        chars = sum(len(u["text"]) for u in us)
        stats[f"{s}.{sp}"] = {"units": len(us), "chars": chars, "tokens": len(ids),
                              "chars_per_token": chars / len(ids)}
        log(f"tokens {s:5s} {sp:7s}: {len(ids):9d} ({chars / len(ids):.2f} chars/token)")
    log(f"tokenized in {time.time() - t0:.1f}s")
    train_stream = torch.cat([streams[(s, "train")] for s in SOURCES])
    N = train_stream.numel()

    # ---- model
    from transformers import Qwen3_5ForCausalLM
    cfg = build_config(args, tok.get_vocab_size(), eot)
    lm = Qwen3_5ForCausalLM(cfg)
    if getattr(lm.config, "_attn_implementation", None) != "sdpa":
        try:
            lm.set_attn_implementation("sdpa")
        except Exception as e:  # noqa: BLE001
            log("set_attn_implementation failed:", e)
            lm.config._attn_implementation = "sdpa"
    log("attn implementation:", lm.config._attn_implementation)
    assert lm.config._attn_implementation == "sdpa"
    if lm.lm_head.weight is not lm.model.embed_tokens.weight:
        log("lm_head not tied after construction: tying manually")
        lm.lm_head.weight = lm.model.embed_tokens.weight
    mtp = MTPHead(lm.config)
    joint = Joint(lm, mtp).to(device)
    n_main, n_mtp = count_params(lm), count_params(mtp)
    log(f"params: main {n_main:,} (tied embeddings {lm.model.embed_tokens.weight.numel():,}), mtp {n_mtp:,}, "
        f"total {n_main + n_mtp:,}")
    log("layer types:", lm.config.layer_types)

    # hidden-state convention check (informational; we use last_hidden_state which is post-norm by construction)
    try:
        with torch.no_grad():
            xx = train_stream[:64].view(1, -1)
            o = lm(input_ids=xx, output_hidden_states=True, use_cache=False)
            lh = lm.model(input_ids=xx, use_cache=False).last_hidden_state
            hs_last = o.hidden_states[-1]
            post = torch.allclose(hs_last, lh, atol=1e-5)
            log(f"output_hidden_states[-1] equals post-norm last_hidden_state: {post} "
                f"(len {len(o.hidden_states)}); MTP uses last_hidden_state (post final norm)")
    except Exception as e:  # noqa: BLE001
        log("output_hidden_states check failed:", repr(e))
    causal_ok = check_causality(joint, cfg.vocab_size, device)

    decay, no_decay = [], []
    for n_, p in joint.named_parameters():
        (decay if p.ndim >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    step_fn = torch.compile(joint) if args.compile else joint

    T, B = args.seq, args.batch
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    ar = torch.arange(T + 2, device=device)
    log(f"training: {args.steps} steps x {B} x {T} = {args.steps * B * T / 1e6:.1f}M tokens "
        f"({args.steps * B * T / N:.2f} epochs of {N:,} train tokens)")
    t_train = time.time()
    acc_main = acc_mtp = 0.0
    acc_n = 0
    curve = []
    stopped_early = False
    step = 0
    for step in range(args.steps):
        lr = lr_at(step, args.steps, args.warmup, args.lr, args.lr_floor)
        for g_ in opt.param_groups:
            g_["lr"] = lr
        offs = torch.randint(0, N - (T + 2), (B,), generator=gen).to(device)
        w = train_stream[offs[:, None] + ar]
        inp, nxt, nxt2 = w[:, :-2], w[:, 1:-1], w[:, 2:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, mlog = step_fn(inp, nxt)
        l_main, l_mtp = loss_fn(logits, mlog, nxt, nxt2)
        loss = l_main + MTP_LOSS_WEIGHT * l_mtp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(joint.parameters(), 1.0)
        opt.step()
        acc_main += l_main.detach()
        acc_mtp += l_mtp.detach()
        acc_n += 1
        if (step + 1) % args.log_every == 0 or step == 0 or step + 1 == args.steps:
            am, amt = (acc_main / acc_n).item(), (acc_mtp / acc_n).item()
            el = time.time() - t_train
            tps = (step + 1) * B * T / el
            log(f"step {step + 1:5d} lr {lr:.2e} loss {am:.4f} mtp_loss {amt:.4f} gnorm {gnorm.item():.3f} "
                f"elapsed {el:6.1f}s tok/s {tps:,.0f}")
            curve.append({"step": step + 1, "loss": am, "mtp_loss": amt, "lr": lr, "elapsed": el})
            acc_main = acc_mtp = 0.0
            acc_n = 0
        if args.eval_every and (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            te = time.time()
            parts = []
            for s_ in SOURCES:
                r = evaluate(joint, streams[(s_, "heldout")], T, 32, device)
                parts.append(f"{s_} {r['ce']:.4f}/{r['ce_mtp']:.4f}")
                curve[-1][f"heldout_{s_}"] = [r["ce"], r["ce_mtp"]]
            t_train += time.time() - te  # keep eval out of the training clock
            log(f"heldout ce (main/mtp) at step {step + 1}: " + ", ".join(parts) + f" ({time.time() - te:.1f}s)")
        if time.time() - t_train > args.max_train_seconds:
            log(f"STOPPED EARLY at step {step + 1} (max-train-seconds {args.max_train_seconds})")
            stopped_early = True
            break
    torch.cuda.synchronize()
    train_secs = time.time() - t_train
    steps_done = step + 1
    log(f"training done: {steps_done} steps in {train_secs:.1f}s ({steps_done * B * T / train_secs:,.0f} tok/s)")

    # ---- ship precision: round to bf16 so everything below measures exactly what is saved
    bf16_round_(joint)
    joint.eval()
    metrics = {"params": {"main": n_main, "mtp": n_mtp, "total": n_main + n_mtp}, "tokens": stats,
               "train": {"steps": steps_done, "batch": B, "seq": T, "seconds": train_secs,
                         "stopped_early": stopped_early, "final": curve[-1] if curve else None},
               "checks": {"causality": causal_ok}}
    t0 = time.time()
    ev = {}
    for s in SOURCES:
        ev[s + ".heldout"] = evaluate(joint, streams[(s, "heldout")], T, 32, device)
        # same number of windows from the train split, for the over-fitting gap
        n_ho = streams[(s, "heldout")].numel()
        ev[s + ".train_sample"] = evaluate(joint, streams[(s, "train")][: max(n_ho, 4 * T)], T, 32, device)
    for k, v in ev.items():
        log(f"eval {k:18s} tokens {v['tokens']:7d} ppl {v['ppl']:8.3f} ce {v['ce']:.4f} top1 {v['top1']:.3f} | "
            f"mtp ce {v['ce_mtp']:.4f} mtp top1 {v['mtp_top1']:.3f} mtp==main-argmax {v['mtp_agree_main']:.3f}")
    metrics["eval"] = ev
    log(f"eval took {time.time() - t0:.1f}s")

    # ---- greedy decoding + simulated greedy depth-1 MTP acceptance (fp32, no cache)
    t0 = time.time()
    reference = {"note": "fp32 PyTorch, no cache, bf16-rounded weights as shipped. greedy = the main model's greedy "
                         "continuation; mtp_draft[p] = argmax of the MTP head on row p (t_{p+1}, h_p), a draft for "
                         "token p+2. accept = simulated greedy depth-1 speculative decoding along the greedy path.",
                 "prompts": []}
    tot = {"drafts": 0, "accepted": 0, "rows": 0, "row_match": 0, "verify_steps": 0, "tokens": 0}
    for s in SOURCES:
        for u in units[(s, "heldout")][: args.gen_prompts]:
            prompt = tok.encode(u["text"], add_special_tokens=False).ids[:32]
            ids, draft, st = greedy_and_acceptance(joint, prompt, args.gen_tokens, device, eot)
            for k in tot:
                tot[k] += st[k]
            reference["prompts"].append({"source": s, "unit": u["name"], "prompt_ids": prompt,
                                         "greedy_ids": ids[len(prompt):], "mtp_draft": draft,
                                         "text": tok.decode(ids[len(prompt):]), "stats": st})
            log(f"greedy {s}/{u['name']}: accept {st['accepted']}/{st['drafts']} rows {st['row_match']}/{st['rows']}"
                f" | {tok.decode(ids[len(prompt):])[:100]!r}")
    acc = {"depth1_acceptance": tot["accepted"] / max(1, tot["drafts"]),
           "row_match_rate": tot["row_match"] / max(1, tot["rows"]),
           "tokens_per_verify_step": tot["tokens"] / max(1, tot["verify_steps"]), **tot}
    reference["summary"] = acc
    metrics["greedy_mtp"] = acc
    log(f"greedy MTP depth-1: acceptance {acc['depth1_acceptance']:.3f} ({tot['accepted']}/{tot['drafts']}), "
        f"all-rows match {acc['row_match_rate']:.3f}, tokens/verify-step {acc['tokens_per_verify_step']:.2f} "
        f"({time.time() - t0:.1f}s)")

    # ---- save (HF layout)
    t0 = time.time()
    lm.config.save_pretrained(args.out + "/_hf_tmp")  # transformers' own config.json, then patched
    with open(os.path.join(args.out, "_hf_tmp", "config.json")) as f:
        cj = json.load(f)
    cj["mtp_num_hidden_layers"] = 1
    cj["dtype"] = "bfloat16"
    cj.pop("torch_dtype", None)
    cj["architectures"] = ["Qwen3_5ForCausalLM"]
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cj, f, indent=2, sort_keys=True)
        f.write("\n")
    gc = {"bos_token_id": None, "eos_token_id": eot, "pad_token_id": eot, "do_sample": False,
          "transformers_version": transformers.__version__}
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump(gc, f, indent=2)
        f.write("\n")
    import shutil
    shutil.rmtree(os.path.join(args.out, "_hf_tmp"))
    state = {}
    for k, v in lm.state_dict().items():
        if k == "lm_head.weight":
            continue  # tied to model.embed_tokens.weight
        state[k] = v.detach().to(torch.bfloat16).cpu()
    for k, v in mtp.state_dict().items():
        state["mtp." + k] = v.detach().to(torch.bfloat16).cpu()
    shards = save_sharded(state, args.out, 12 * 1000 * 1000)
    log(f"saved {len(state)} tensors in {shards} ({time.time() - t0:.1f}s); config model_type {cj.get('model_type')}")

    # ---- reload checks
    checks = metrics["checks"]
    try:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        c2 = AutoConfig.from_pretrained(args.out)
        checks["config_mtp_num_hidden_layers"] = getattr(c2, "mtp_num_hidden_layers", None)
        m2, info = AutoModelForCausalLM.from_pretrained(args.out, dtype=torch.float32, output_loading_info=True,
                                                        attn_implementation="sdpa")
        m2 = m2.to(device).eval()
        log(f"from_pretrained: class {type(m2).__name__} missing {info.get('missing_keys')} "
            f"unexpected {len(info.get('unexpected_keys') or [])} mismatched {info.get('mismatched_keys')}")
        x = streams[("docs", "heldout")][:512].view(1, -1)
        with torch.no_grad():
            ref = lm(input_ids=x, use_cache=False).logits.float()
            got = m2(input_ids=x, use_cache=False).logits.float()
        d = (ref - got).abs().max().item()
        same_argmax = (ref.argmax(-1) == got.argmax(-1)).float().mean().item()
        checks["from_pretrained_max_abs_logit_diff"] = d
        checks["from_pretrained_argmax_agreement"] = same_argmax
        checks["from_pretrained_missing_keys"] = list(info.get("missing_keys") or [])
        log(f"from_pretrained logits vs trained module: max abs diff {d:.3e}, argmax agreement {same_argmax:.4f} -> "
            f"{'PASS' if d < 1e-3 else 'FAIL'}")
        # cached generation in transformers (recurrent GDN path) vs our no-cache greedy
        try:
            p0 = reference["prompts"][0]
            gen_ids = m2.generate(torch.tensor([p0["prompt_ids"]], device=device), max_new_tokens=32,
                                  do_sample=False)[0, len(p0["prompt_ids"]):].tolist()
            n_same = sum(1 for a, b in zip(gen_ids, p0["greedy_ids"]) if a == b)
            first_diff = next((i for i, (a, b) in enumerate(zip(gen_ids, p0["greedy_ids"])) if a != b), None)
            checks["hf_generate_matches_nocache_greedy"] = first_diff is None
            log(f"HF generate (cache) vs no-cache greedy: {n_same}/{len(gen_ids)} equal, first diff {first_diff}")
        except Exception as e:  # noqa: BLE001
            log("HF generate check failed:", repr(e))
        # MTP weights reload
        from safetensors.torch import load_file
        loaded = {}
        for fn in shards:
            loaded.update(load_file(os.path.join(args.out, fn)))
        mtp2 = MTPHead(lm.config).to(device)
        mtp2.load_state_dict({k[4:]: v.float() for k, v in loaded.items() if k.startswith("mtp.")}, strict=True)
        j2 = Joint(m2, mtp2).eval()
        with torch.no_grad():
            _, a = full_forward(joint, x[0, :128].tolist(), device)
            _, b = full_forward(j2, x[0, :128].tolist(), device)
        dm = (a - b).abs().max().item()
        checks["mtp_reload_max_abs_logit_diff"] = dm
        log(f"MTP reload from safetensors: max abs logit diff {dm:.3e} -> {'PASS' if dm < 1e-3 else 'FAIL'}")
        # tokenizer
        t2 = AutoTokenizer.from_pretrained(args.out)
        sample = units[("code", "heldout")][0]["text"][:2000] + "<|endoftext|>" + \
            units[("kjv", "heldout")][0]["text"][:500]
        a_ids = tok.encode(sample, add_special_tokens=False).ids
        b_ids = t2(sample, add_special_tokens=False)["input_ids"]
        rt = tok.decode(a_ids, skip_special_tokens=False) == sample
        checks["autotokenizer_ids_match"] = a_ids == b_ids
        checks["tokenizer_roundtrip"] = rt
        log(f"AutoTokenizer ({type(t2).__name__}) ids match: {a_ids == b_ids}; decode round trip: {rt}; "
            f"eos {t2.eos_token!r} -> {t2.eos_token_id}")
    except Exception as e:  # noqa: BLE001
        import traceback
        log("RELOAD CHECKS FAILED:", repr(e))
        log(traceback.format_exc())
        checks["reload_exception"] = repr(e)

    metrics["loss_curve"] = curve
    metrics["wall_seconds"] = time.time() - t_start
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(reference, f)
        f.write("\n")
    log(f"total wall {time.time() - t_start:.1f}s")

    if args.compile_bench:
        # eager reference for the same measurement
        tb = time.time()
        for i in range(args.compile_bench):
            offs = torch.randint(0, N - (T + 2), (B,), generator=gen).to(device)
            w = train_stream[offs[:, None] + ar]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                lo, ml = joint(w[:, :-2], w[:, 1:-1])
            l1, l2 = loss_fn(lo, ml, w[:, 1:-1], w[:, 2:])
            (l1 + 0.3 * l2).backward()
            joint.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        log(f"eager bench: {(time.time() - tb) / args.compile_bench * 1000:.1f} ms/step fwd+bwd (no optimizer)")

        try:
            torch.compiler.reset()
            cj_ = torch.compile(joint.train())
            for i in range(args.compile_bench + 1):
                if i == 1:
                    torch.cuda.synchronize()
                    tb = time.time()
                ta = time.time()
                offs = torch.randint(0, N - (T + 2), (B,), generator=gen).to(device)
                w = train_stream[offs[:, None] + ar]
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    lo, ml = cj_(w[:, :-2], w[:, 1:-1])
                l1, l2 = loss_fn(lo, ml, w[:, 1:-1], w[:, 2:])
                (l1 + 0.3 * l2).backward()
                joint.zero_grad(set_to_none=True)
                if i == 0:
                    torch.cuda.synchronize()
                    log(f"compile bench: first step (compile) {time.time() - ta:.1f}s")
            torch.cuda.synchronize()
            log(f"compile bench: {(time.time() - tb) / args.compile_bench * 1000:.1f} ms/step fwd+bwd (no optimizer)")
        except Exception as e:  # noqa: BLE001
            log("compile bench failed:", repr(e)[:2000])


if __name__ == "__main__":
    main()
