#!/usr/bin/env python3
"""Held-out prompts for measuring the demo model (imp-bench --prompts): 12 per class, from the held-out units of
the training corpus (.corpus/{code,docs,kjv}.heldout.jsonl.xz, made by prepare_corpus.py). The held-out units
are few and long (3 code files), so prompts start at line starts spaced at least 2,000 characters apart through
every unit (code: at `def`/`class` lines), are cut at a line end after 200 characters (at most 400), and 12 are
taken evenly from those candidates. Deterministic.

Usage: python3 tools/train/make_prompts.py [.corpus] > models/imp-demo/heldout_prompts.json
"""
import json
import lzma
import sys

CLASSES = {"code": "code", "prose": "docs", "scripture": "kjv"}
PER_CLASS = 12


def opening(text):
    out = ""
    for line in text.splitlines(keepends=True):
        if len(out) + len(line) > 400:
            break
        out += line
        if len(out) >= 200:
            break
    return out if len(out) >= 100 else text[:300]


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else ".corpus"
    prompts = {}
    for cls, src in CLASSES.items():
        with lzma.open(f"{corpus}/{src}.heldout.jsonl.xz", "rt", encoding="utf-8") as f:
            units = [json.loads(line) for line in f]
        candidates = []
        for u in units:
            text, last = u["text"], -10**9
            pos = 0
            for line in text.splitlines(keepends=True):
                starts_block = line.lstrip().startswith(("def ", "class ")) if cls == "code" else line.strip() != ""
                if starts_block and pos - last >= 2000 and len(text) - pos >= 250:
                    candidates.append(opening(text[pos:]))
                    last = pos
                pos += len(line)
        step = max(1, len(candidates) // PER_CLASS)
        prompts[cls] = candidates[::step][:PER_CLASS]
    json.dump(prompts, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
