#!/usr/bin/env python3
"""Bytes per sample of the persistent blocks under a directory.

Finds every block (a directory with a meta.json carrying
stats.numSamples, Prometheus' layout and Pharos' alike), skips blocks that
another block lists as merged into it, and prints one JSON object: blocks,
samples, bytes (every file of the counted blocks: index, chunks, meta) and
bytes_per_sample.

usage: block_stats.py DIR
"""
import json
import os
import sys


def main(root):
    blocks = {}
    kinds = {}
    for d, _dirs, files in os.walk(root):
        if "meta.json" not in files or d.endswith(".tmp"):
            continue
        try:
            with open(os.path.join(d, "meta.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        samples = meta.get("stats", {}).get("numSamples")
        if samples is None:
            continue
        size = 0
        for sd, _, fs in os.walk(d):
            for x in fs:
                n = os.path.getsize(os.path.join(sd, x))
                size += n
                kinds[x if x in ("index", "meta.json") else "chunks"] = kinds.get(
                    x if x in ("index", "meta.json") else "chunks", 0) + n
        sources = meta.get("sources") or meta.get("compaction", {}).get("sources") or []
        blocks[os.path.basename(d)] = (samples, size, set(sources))
    merged = set()
    for ulid, (_, _, sources) in blocks.items():
        merged |= {s for s in sources if s != ulid}
    counted = {u: b for u, b in blocks.items() if u not in merged}
    samples = sum(b[0] for b in counted.values())
    size = sum(b[1] for b in counted.values())
    print(json.dumps({
        "blocks": len(counted),
        "samples": samples,
        "bytes": size,
        "bytes_per_sample": size / samples if samples else None,
        # every block found, merged sources included
        "bytes_by_file": kinds,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
