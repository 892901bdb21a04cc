#!/usr/bin/env python3
"""Reads tern-heapwalk's dumps (tests/tools/tern_heapwalk.c).

  tern_heapwalk.py DUMP [ARENA]   free chunks by size in ARENA (main,
                                  arena0, ...) and the sites beside them
  tern_heapwalk.py DUMP others     what the other arenas (background
                                  threads) held at their last high-water
                                  mark, by site, and each site's own peak
  tern_heapwalk.py DUMP_A DUMP_B  sites by the bytes they allocated and by
                                  their live growth between two dumps

Names come from dladdr (exported symbols, demangled by c++filt) or, for
tern's own static functions, from addr2line on the binary."""
import os
import re
import subprocess
import sys

NO_SITE = -1  # the dump prints UINT32_MAX as int


def load(path):
    sites, pins, lines = {}, [], []
    cur = None
    for line in open(path):
        if line.startswith("site "):
            f = line.split()
            h = f.index("hist")
            kv = dict(zip(f[0:h:2], f[1:h:2]))
            cur = {k: (v if k == "thread" else int(v)) for k, v in kv.items()}
            cur["life"] = [int(x) for x in f[h + 1:]]
            cur["frames"] = []
            sites[cur["site"]] = cur
        elif line.startswith("  ") and cur is not None:
            cur["frames"].append(line.strip())
        elif line.startswith("pin "):
            f = line.split()
            pins.append((f[1], int(f[3]), int(f[5]), int(f[7]), int(f[9])))
        else:
            lines.append(line.rstrip("\n"))
    return sites, pins, lines


class Namer:
    def __init__(self, sites):
        syms = sorted({fr.split()[1].rsplit("+", 1)[0]
                       for s in sites.values() for fr in s["frames"]
                       if len(fr.split()) > 1 and not fr.split()[1].startswith("?")})
        out = subprocess.run(["c++filt"], input="\n".join(syms),
                             capture_output=True, text=True).stdout.split("\n")
        self.demangled = dict(zip(syms, out))
        self.cache = {}

    def frame(self, fr):
        parts = fr.split()
        path, off = parts[0].rsplit("+", 1)
        module = os.path.basename(path)
        if len(parts) > 1 and not parts[1].startswith("?"):
            name = self.demangled.get(parts[1].rsplit("+", 1)[0], parts[1])
            return f"{module.split('.')[0]}:{re.sub(r'[(].*', '', name)[-60:]}"
        if (path, off) not in self.cache:
            r = subprocess.run(["addr2line", "-f", "-C", "-e", path, off],
                               capture_output=True, text=True).stdout.split("\n")
            name = r[0] if r and r[0] != "??" else off
            self.cache[(path, off)] = re.sub(r"[(].*", "", name)[-60:]
        return f"{module}:{self.cache[(path, off)]}"

    def site(self, sites, i):
        if i == NO_SITE:
            return "(untracked: tcache/fastbin or older than the hook)"
        s = sites.get(i)
        if not s:
            return f"(site {i})"
        frames = [self.frame(x) for x in s["frames"]]
        frames = [x for x in frames if not x.startswith("libstdc")][:3]
        return (f"[{s['thread']}, {s['main']}/{s['allocs']} in main] "
                + " <- ".join(frames))


def one(path, arena):
    sites, pins, lines = load(path)
    namer = Namer(sites)
    for line in lines:
        if line.startswith(f"heapwalk {arena} ") or line.startswith("mallinfo"):
            print(line)
    print("free chunks by size:")
    for line in lines:
        if line.startswith(f"{arena} free band"):
            f = line.split()
            print(f"  {f[3]:>9} {int(f[4]):7d} chunks {int(f[6]) / 2**20:7.2f} MiB")
    mine = [p for p in pins if p[0] == arena]
    total = sum(p[4] for p in mine)
    print(f"free chunks of 1 KiB+: {sum(p[3] for p in mine)}, "
          f"{total / 2**20:.2f} MiB; half of each to the site below it, half "
          "to the one above:")
    by_site = {}
    for _, below, above, _, b in mine:
        by_site[below] = by_site.get(below, 0) + b / 2
        by_site[above] = by_site.get(above, 0) + b / 2
    for s, b in sorted(by_site.items(), key=lambda x: -x[1])[:15]:
        print(f"  {b / 2**20:6.2f} MiB  {namer.site(sites, s)}")


def others(path):
    sites, _, lines = load(path)
    namer = Namer(sites)
    for line in lines:
        if line.startswith("others tracked"):
            f = line.split()
            print(f"other arenas, tracked live: now {int(f[3]) / 2**20:.2f} MiB, "
                  f"at the high-water mark {int(f[5]) / 2**20:.2f} MiB")
    for title, key in (("at the high-water mark", "other_at_peak"),
                       ("each site's own peak", "other_peak")):
        print(f"--- {title}")
        rows = sorted(sites.values(), key=lambda s: -s.get(key, 0))[:20]
        for s in rows:
            if s.get(key, 0) < 2**16:
                break
            print(f"  {s[key] / 2**20:6.2f} MiB (now {s['other_live'] / 2**20:.2f}, "
                  f"{s['allocs']} allocs) {namer.site(sites, s['site'])}")


def two(path_a, path_b):
    a, _, _ = load(path_a)
    b, _, lines = load(path_b)
    namer = Namer(b)
    zero = {"allocs": 0, "frees": 0, "live_bytes": 0, "alloc_bytes": 0}
    rows = []
    for k, s in b.items():
        o = a.get(k, zero)
        rows.append((s, s["allocs"] - o["allocs"], s["alloc_bytes"] - o["alloc_bytes"],
                     s["live_bytes"] - o["live_bytes"]))
    for title, key in (("bytes allocated between the dumps", lambda r: -r[2]),
                       ("live growth between the dumps", lambda r: -r[3])):
        print(f"--- {title}")
        for s, da, dbytes, dlive in sorted(rows, key=key)[:15]:
            print(f"  +{da} allocs, {dbytes / 2**20:.1f} MiB, live "
                  f"{dlive / 2**20:+.2f} -> {s['live_bytes'] / 2**20:.2f} MiB, "
                  f"lifetimes {s['life']}\n      {namer.site(b, s['site'])}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and os.path.exists(sys.argv[2]):
        two(sys.argv[1], sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[2] == "others":
        others(sys.argv[1])
    elif len(sys.argv) in (2, 3):
        one(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "main")
    else:
        sys.exit(__doc__)
