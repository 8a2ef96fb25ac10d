#!/usr/bin/env bash
# realprog_git: the same git session runs twice in fresh directories, plain
# and with corona preloaded into every git process (git gc, for one, starts
# several): init, 18 commits over 40 generated files (adds, edits, deletes,
# a rename), a branch and a merge, log -p/--stat, blame, grep, gc, then
# fsck --full --strict, count-objects, rev-list --objects and log again.
# Author/committer names, emails and dates are fixed, so commit ids and all
# outputs must be identical; every preloaded git process must bind malloc
# and free to corona.
source "$(dirname "$0")/common.sh" "$@"
rp_need git awk sha256sum
GIT=$(command -v git)

# A clean, fixed environment: no user or system config, fixed identity.
export HOME="$RP_TMP/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Corona Tester" GIT_AUTHOR_EMAIL="corona@example.invalid"
export GIT_COMMITTER_NAME="Corona Tester" GIT_COMMITTER_EMAIL="corona@example.invalid"
export LC_ALL=C TZ=UTC GIT_PAGER=cat PAGER=cat
mkdir -p "$HOME"

# write_files DIR ROUND: a deterministic tree for one round of edits.
write_files() {
    local dir=$1 round=$2
    awk -v dir="$dir" -v r="$round" 'BEGIN {
        for (f = 0; f < 40; f++) {
            if ((f + r) % 11 == 0 && r > 0) continue          # some files are skipped: edited less
            sub_ = (f % 4 == 0) ? "src/" : (f % 4 == 1) ? "doc/" : (f % 4 == 2) ? "lib/deep/er/" : ""
            path = dir "/" sub_ "file" f ".txt"
            n = 150 + (f * 37) % 200
            for (l = 0; l < n; l++) {
                v = (l * 2654435761 + f * 40503 + ((l % 7 == (r % 7)) ? r * 97 : 0)) % 1000003
                printf "line %d of file %d: value %d %s\n", l, f, v, substr("the quick brown fox jumps over the lazy dog", 1 + (l + f) % 30) > path
            }
            close(path)
        }
    }'
}

# session MODE: the whole git session, every git process run per MODE;
# its stdout and stderr go to the transcript to compare.
g() { # git with the current mode's environment; counts invocations
    ((++ncalls))
    rp_run "$mode-$ncalls" "$mode" -- "$GIT" "$@"
    cat "$RP_TMP/$mode-$ncalls.out" "$RP_TMP/$mode-$ncalls.err"
    rm -f "$RP_TMP/$mode-$ncalls.out" "$RP_TMP/$mode-$ncalls.err"
}
session() {
    mode=$1 ncalls=0
    local repo="$RP_TMP/repo-$mode"
    mkdir -p "$repo/src" "$repo/doc" "$repo/lib/deep/er"
    cd "$repo"
    g init -q -b main .
    g config gc.auto 0
    g config pack.threads 2
    local r
    for r in $(seq 0 17); do
        export GIT_AUTHOR_DATE="@$((1700000000 + r * 3600)) +0000"
        export GIT_COMMITTER_DATE="$GIT_AUTHOR_DATE"
        if ((r == 11)); then g checkout -q -b topic; fi
        if ((r == 15)); then g checkout -q main; fi
        write_files "$repo" "$r"
        if ((r == 8)); then g mv -k src/file4.txt src/renamed4.txt; fi
        if ((r == 12)); then g rm -q -f doc/file5.txt; fi
        g add -A .
        g commit -q -m "round $r: edit generated files" -m "body of commit $r"
    done
    export GIT_AUTHOR_DATE="@1700100000 +0000" GIT_COMMITTER_DATE="@1700100000 +0000"
    g merge -q -s ours --no-edit -m "merge topic" topic
    echo "== log"
    g log --all --format='%H %T %P|%an <%ae>|%ad|%s' --date=iso-strict
    echo "== log -p"
    g log -p --stat --summary main | sha256sum
    echo "== diff"
    g diff --stat HEAD~8 HEAD
    echo "== blame"
    g blame -s lib/deep/er/file2.txt | sha256sum
    echo "== grep"
    g grep -c 'value 1[0-9]*7 ' HEAD
    echo "== gc"
    g gc -q --prune=now
    echo "== fsck"
    g fsck --full --strict --no-progress
    echo "== count-objects"
    g count-objects -v | grep -E '^(count|in-pack|packs|prune-packable|garbage):'
    echo "== rev-list"
    g rev-list --all --objects | sort | sha256sum
    echo "== log after gc"
    g log --all --format='%H %T|%s' | sha256sum
    g cat-file -p HEAD
    cd "$RP_TMP"
}

session plain >"$RP_TMP/transcript-plain"
session preload >"$RP_TMP/transcript-corona"
rp_same "$RP_TMP/transcript-plain" "$RP_TMP/transcript-corona" "git transcript (stdout and stderr)"
grep -q '^in-pack: [1-9]' "$RP_TMP/transcript-corona" || rp_fail "git gc under corona did not pack the objects"
# Every preloaded git process (the top-level ones and their children).
n=0
for ((i = 1; i <= ncalls; i++)); do
    rp_check_served "preload-$i" "$GIT" >/dev/null
    ((++n))
done
nproc=$(ls "$RP_TMP"/preload-*.ld.* | wc -l)
echo "[$RP_NAME] served by corona: all $n preloaded git commands ($nproc processes with their children) bind malloc/free to libcorona.so"
echo "[$RP_NAME] OK: $(grep -c . "$RP_TMP/transcript-corona") identical transcript lines; total $(rp_secs) s"
