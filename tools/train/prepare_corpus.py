#!/usr/bin/env python3
"""Build the deterministic training corpus for the bundled demo model (models/imp-demo).

Python 3.11 standard library only. Run on Debian 12 with the packages
    apt-get install -y python3.11-doc bible-kjv-text bible-kjv
(the `bible` program from bible-kjv decompresses the KJV text shipped by bible-kjv-text).

Three sources, each split into train / held-out by a fixed rule:
  code   /usr/lib/python3.11/*.py (Python standard library, top level)      unit: file
  docs   /usr/share/doc/python3.11/html/_sources/**/*.rst.txt (reST)        unit: file
  kjv    King James Bible, via `bible -l100000 gen1:1-rev22:21`             unit: chapter
Units are sorted (path / canonical order); unit i is held out iff i % 50 == 49 (2%, spread over the
whole source instead of only its tail so every kind of file / book is represented).

Output (git-ignored): <out>/{code,docs,kjv}.{train,heldout}.jsonl.xz, one JSON object per line
{"name": ..., "text": ...}, plus <out>/MANIFEST.json with sizes, sha256 sums and package versions.
The xz streams are written with fixed settings, so the output is byte-identical run to run.
"""
import argparse
import glob
import hashlib
import io
import json
import lzma
import os
import re
import subprocess
import sys
import unicodedata

HOLDOUT_MOD = 50
PY_DOC_SRC = "/usr/share/doc/python3.11/html/_sources"
PY_LIB = "/usr/lib/python3.11"


def pkg_version(name):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True,
                             check=True).stdout.strip()
        return out or None
    except Exception:
        return None


def clean(text):
    # Normalise line endings and Unicode (the tokenizer NFC-normalises anyway); drop a BOM.
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    return unicodedata.normalize("NFC", text)


def read_utf8(path):
    with open(path, "rb") as f:
        return clean(f.read().decode("utf-8", errors="replace"))


def code_units():
    files = sorted(glob.glob(os.path.join(PY_LIB, "*.py")))
    if not files:
        sys.exit(f"no Python sources under {PY_LIB}")
    return [(os.path.basename(p), read_utf8(p)) for p in files]


def docs_units():
    files = sorted(glob.glob(os.path.join(PY_DOC_SRC, "**", "*.rst.txt"), recursive=True))
    if not files:
        sys.exit(f"no reST sources under {PY_DOC_SRC} (is python3.11-doc installed?)")
    return [(os.path.relpath(p, PY_DOC_SRC), read_utf8(p)) for p in files]


HEADER = re.compile(r"^(\S.*) (\d+)$")
VERSE = re.compile(r"^\s+(\d+) (.*)$")


def kjv_units():
    try:
        raw = subprocess.run(["bible", "-l100000", "gen1:1-rev22:21"], capture_output=True, check=True,
                             cwd="/", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "100000"}
                             ).stdout.decode("latin-1")
    except FileNotFoundError:
        sys.exit("the `bible` program is missing: apt-get install -y bible-kjv bible-kjv-text")
    units, name, lines = [], None, []
    for line in raw.split("\n"):
        line = line.rstrip()
        m = HEADER.match(line)
        if m:
            if name is not None:
                units.append((name, "\n".join(lines) + "\n"))
            name, lines = f"{m.group(1)} {m.group(2)}", [f"{m.group(1)} {m.group(2)}", ""]
            continue
        m = VERSE.match(line)
        if m:
            lines.append(f"{m.group(1)} {m.group(2)}")
        elif line.strip():
            sys.exit(f"unexpected line in bible output: {line!r}")
    if name is not None:
        units.append((name, "\n".join(lines) + "\n"))
    if len(units) != 1189:
        sys.exit(f"expected 1189 KJV chapters, got {len(units)}")
    return [(n, clean(t)) for n, t in units]  # canonical order, not sorted by name


def write_jsonl_xz(path, units):
    buf = io.BytesIO()
    for name, text in units:
        buf.write(json.dumps({"name": name, "text": text}, ensure_ascii=False).encode("utf-8"))
        buf.write(b"\n")
    data = lzma.compress(buf.getvalue(), format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                         preset=9 | lzma.PRESET_EXTREME)
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest(), len(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                  ".corpus"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)

    manifest = {
        "holdout_rule": f"unit index i (sorted, 0-based) held out iff i % {HOLDOUT_MOD} == {HOLDOUT_MOD - 1}",
        "packages": {p: pkg_version(p) for p in
                     ("python3.11-doc", "libpython3.11-minimal", "libpython3.11-stdlib", "bible-kjv-text",
                      "bible-kjv")},
        "sources": {},
    }
    for src, fn in (("code", code_units), ("docs", docs_units), ("kjv", kjv_units)):
        units = fn()
        train = [u for i, u in enumerate(units) if i % HOLDOUT_MOD != HOLDOUT_MOD - 1]
        held = [u for i, u in enumerate(units) if i % HOLDOUT_MOD == HOLDOUT_MOD - 1]
        entry = {}
        for split, us in (("train", train), ("heldout", held)):
            fname = f"{src}.{split}.jsonl.xz"
            sha, nbytes = write_jsonl_xz(os.path.join(out, fname), us)
            entry[split] = {"file": fname, "units": len(us), "chars": sum(len(t) for _, t in us),
                            "xz_bytes": nbytes, "sha256": sha}
        entry["heldout_names"] = [n for n, _ in held]
        manifest["sources"][src] = entry
        print(f"{src:5s} train {entry['train']['units']:5d} units {entry['train']['chars']:9d} chars | "
              f"heldout {entry['heldout']['units']:3d} units {entry['heldout']['chars']:8d} chars")
    with open(os.path.join(out, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print("packages:", manifest["packages"])
    print("wrote", out)


if __name__ == "__main__":
    main()
