#!/usr/bin/env bash
# realprog_python: Debian's python3 runs a dict/list/string-heavy script
# (with PYTHONMALLOC=malloc, so every object comes from malloc rather than
# Python's own arenas) once plain and once with corona preloaded.  The
# outputs (counts and SHA-256 checksums of everything built) must be
# identical, and the preloaded interpreter's malloc/free must bind to corona.
source "$(dirname "$0")/common.sh" "$@"

PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3 || true)
[[ -n $PY && -x $PY ]] || rp_fail "python3 is not installed; scripts/deps installs it"

cat >"$RP_TMP/work.py" <<'PYEOF'
import hashlib, json, re, random, threading
rng = random.Random(20240601)
H = hashlib.sha256()
def out(label, value):
    s = "%s %s" % (label, value)
    print(s)
    H.update(s.encode())
# 1. a dict of 100k string keys holding lists and strings
d = {}
for i in range(100000):
    k = "key-%06d-%s" % (i, "abcdefghij"[: i % 11])
    d[k] = [i, str(i * 7919), k[::-1] * (1 + i % 3)]
out("dict.len", len(d))
out("dict.sha", hashlib.sha256("".join(k + v[1] for k, v in sorted(d.items())).encode()).hexdigest())
# 2. delete two thirds, grow again with bigger values
for i, k in enumerate(list(d)):
    if i % 3:
        del d[k]
for i in range(50000):
    d["new-%d" % i] = {"n": i, "s": "x" * (i % 700), "t": tuple(range(i % 20))}
out("dict2.len", len(d))
out("dict2.sum", sum(len(v["s"]) if isinstance(v, dict) else v[0] for v in d.values()))
# 3. lists: random ints, sorting, slicing, list of lists
lst = [rng.randrange(1 << 40) for _ in range(200000)]
lst.sort()
out("list.sha", hashlib.sha256(b",".join(str(x).encode() for x in lst[::97])).hexdigest())
chunks = [lst[i:i + rng.randrange(1, 300)] for i in range(0, len(lst), 250)]
out("chunks", (len(chunks), sum(map(len, chunks))))
# 4. strings: joins, regex, replace, big strings (> 8 KB)
words = ["".join(chr(97 + rng.randrange(26)) for _ in range(rng.randrange(1, 15))) for _ in range(60000)]
text = " ".join(words)
out("text.len", len(text))
freq = {}
for w in re.findall(r"[aeiou][a-z]+", text):
    freq[w] = freq.get(w, 0) + 1
out("top", sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:10])
big = [text[i:i + rng.randrange(8000, 40000)].upper().replace("A", "--") for i in range(0, 200000, 5000)]
out("big.sha", hashlib.sha256("|".join(big).encode()).hexdigest())
# 5. json round trip, sets, big ints, a growing bytearray (realloc)
blob = json.dumps({k: d[k] for k in sorted(d)[:20000]}, sort_keys=True)
out("json", (len(blob), len(json.loads(blob))))
s1 = set(words); s2 = set(w[::-1] for w in words)
out("sets", (len(s1), len(s2), len(s1 & s2), len(s1 | s2)))
f = 1
for i in range(1, 3000):
    f *= i
out("fact", (f.bit_length(), f % 1000000007))
ba = bytearray()
for i in range(100000):
    ba += bytes([i & 255]) * (i % 5)
out("bytearray", (len(ba), hashlib.md5(ba).hexdigest()))
# 6. four threads build and drop their own structures; objects made by one
#    thread are released by another (the lists are handed over)
results = [None] * 4
handover = [None] * 4
def worker(n):
    r = random.Random(n)
    mine = {("t%d-%d" % (n, i)): [r.random() for _ in range(i % 50)] for i in range(8000)}
    handover[n] = mine
    results[n] = hashlib.sha256(repr(sorted(mine.items())[:500]).encode()).hexdigest()
ts = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for t in ts: t.start()
for t in ts: t.join()
out("threads", results)
out("handover", sum(len(v) for m in handover for v in m.values()))
handover.clear()
print("total", H.hexdigest())
PYEOF

export PYTHONHASHSEED=0 PYTHONMALLOC=malloc PYTHONDONTWRITEBYTECODE=1
rp_plain_and_corona python3 "$PY" "$RP_TMP/work.py"
grep -q '^total [0-9a-f]\{64\}$' "$RP_TMP/corona.out" || rp_fail "python3 output has no final checksum line"
rp_check_served corona "$PY"
echo "[$RP_NAME] OK: $(wc -l <"$RP_TMP/corona.out") identical output lines; python3 $t_plain s plain, $t_corona s with corona (incl. LD_DEBUG); total $(rp_secs) s"
