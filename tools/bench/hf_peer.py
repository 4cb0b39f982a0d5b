#!/usr/bin/env python3
"""The transformers peer figure for imp-bench --random-weights: the same config.json shape with random weights,
bf16, batch 1, on the same GPU, decoded greedily with `generate` (KV cache on, no stopping before max_new_tokens).

    python3 tools/bench/hf_peer.py configs/qwen35-9b-like.json [--prompt 64] [--tokens 128] [--attn sdpa]

Prints decode tok/s (generate time of N+1 tokens minus the prefill-only generate of 1 token, over N) and the
prefill time. The text model alone is built (Qwen3_5ForCausalLM / Qwen3_5MoeForCausalLM from text_config), as
imp-bench builds it; no MTP head (transformers has none). Whether transformers takes the fast Gated DeltaNet
kernels depends on the optional flash-linear-attention and causal-conv1d packages; the script prints which path
it found, since that changes the figure a lot.
"""
import argparse
import importlib.util
import json
import time

import torch
import transformers


def build(config_path):
    with open(config_path) as f:
        cfg = json.load(f)
    text = cfg.get("text_config", cfg)
    mt = cfg.get("model_type", "")
    if mt == "qwen3_5":
        tc, cls = transformers.Qwen3_5TextConfig, transformers.Qwen3_5ForCausalLM
    elif mt == "qwen3_5_moe":
        tc, cls = transformers.Qwen3_5MoeTextConfig, transformers.Qwen3_5MoeForCausalLM
    elif mt == "qwen3_next":
        tc, cls = transformers.Qwen3NextConfig, transformers.Qwen3NextForCausalLM
    else:
        raise SystemExit(f"unknown model_type {mt!r}")
    text = {k: v for k, v in text.items() if k not in ("model_type",)}
    return tc(**text), cls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    for pkg in ("fla", "causal_conv1d"):
        print(f"{pkg}: {'present' if importlib.util.find_spec(pkg) else 'absent'}")
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, {torch.cuda.get_device_name()}")
    cfg, cls = build(a.config)
    torch.manual_seed(a.seed)
    t0 = time.time()
    with torch.device("cuda"):
        model = cls._from_config(cfg, attn_implementation=a.attn, dtype=torch.bfloat16)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"built {cls.__name__}: {n_params / 1e9:.2f} B parameters in {time.time() - t0:.1f} s, "
          f"{torch.cuda.memory_allocated() / 2**30:.1f} GiB")

    ids = torch.randint(0, cfg.vocab_size, (1, a.prompt), device="cuda")

    def gen(n):
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=True,
                           eos_token_id=None, pad_token_id=0)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    gen(4)  # warm-up
    t_prefill = min(gen(1) for _ in range(3))
    t_all = min(gen(a.tokens + 1) for _ in range(2))
    per_tok = (t_all - t_prefill) / a.tokens
    print(f"prefill {a.prompt} tokens + 1: {t_prefill * 1e3:.1f} ms")
    print(f"transformers decode: {1 / per_tok:.1f} tok/s, {per_tok * 1e3:.2f} ms/token "
          f"(generate of {a.tokens + 1} tokens minus generate of 1)")


if __name__ == "__main__":
    main()
