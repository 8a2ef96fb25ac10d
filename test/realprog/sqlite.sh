#!/usr/bin/env bash
# realprog_sqlite: the sqlite3 shell builds a database from a generated SQL
# script (100k INSERT statements in one transaction, a second table filled
# by a recursive CTE, indexes, updates, deletes, VACUUM) and runs aggregate,
# join, window and group_concat queries plus an integrity check; once plain
# and once with corona preloaded, each on a fresh database file.  Query
# outputs must be identical, and the preloaded sqlite3's malloc/free must
# bind to corona.
source "$(dirname "$0")/common.sh" "$@"
rp_need sqlite3 awk
SQLITE=$(command -v sqlite3)

sql="$RP_TMP/work.sql"
{
    cat <<'SQL'
PRAGMA page_size = 4096;
PRAGMA cache_size = -20000;
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, name TEXT NOT NULL, val REAL, note TEXT);
CREATE TABLE tag(tid INTEGER PRIMARY KEY, t_id INTEGER, label TEXT);
BEGIN;
SQL
    awk 'BEGIN { for (i = 1; i <= 100000; i++) {
        h = (i * 2654435761) % 1000003
        printf "INSERT INTO t VALUES(%d, %d, '\''name-%d-%s'\'', %d.%02d, '\''%s'\'');\n", i, (i * 7919) % 97, h,
            substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26, 1 + i % 17), (i * 31337) % 10007, i % 100,
            (i % 7 == 0) ? sprintf("%0" (i % 400 + 1) "d", 0) : ""
    } }'
    cat <<'SQL'
COMMIT;
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 60000)
INSERT INTO tag SELECT x, (x * 48271) % 100000 + 1, 'label-' || (x % 613) || '-' || hex(x * 7) FROM c;
COMMIT;
CREATE INDEX t_grp ON t(grp, val);
CREATE INDEX t_name ON t(name);
CREATE INDEX tag_t ON tag(t_id);
.headers off
.mode list
SELECT 'count', count(*), sum(grp), printf('%.2f', total(val)), sum(length(note)) FROM t;
SELECT 'grp', grp, count(*), printf('%.3f', avg(val)), min(name), max(name) FROM t GROUP BY grp ORDER BY grp LIMIT 20;
SELECT 'distinct', count(DISTINCT name), count(DISTINCT substr(name, 1, 9)) FROM t;
SELECT 'ids', group_concat(id, ',') FROM (SELECT id FROM t WHERE grp = 5 ORDER BY name LIMIT 60);
SELECT 'join', t.grp, count(*), count(DISTINCT tag.label) FROM t JOIN tag ON tag.t_id = t.id
  GROUP BY t.grp ORDER BY 3 DESC, 2 LIMIT 10;
SELECT 'window', id, printf('%.2f', sum(val) OVER (PARTITION BY grp ORDER BY id ROWS BETWEEN 3 PRECEDING AND CURRENT ROW)),
  rank() OVER (PARTITION BY grp ORDER BY val DESC, id) FROM t WHERE grp IN (3, 50) ORDER BY id LIMIT 30;
SELECT 'like', count(*) FROM t WHERE name LIKE '%-abc%' OR note GLOB '0000*';
UPDATE t SET name = upper(name), note = note || note WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
DELETE FROM tag WHERE t_id NOT IN (SELECT id FROM t);
VACUUM;
SELECT 'after', count(*), sum(length(name)), sum(length(note)), printf('%.2f', total(val)) FROM t;
SELECT 'tags', count(*), max(label) FROM tag;
SELECT 'top', name, val FROM t ORDER BY val DESC, id LIMIT 15;
SELECT 'big', length(group_concat(name || ':' || note, '|')) FROM t;
PRAGMA integrity_check;
SQL
} >"$sql"

rp_run plain plain -- "$SQLITE" -batch -bail "$RP_TMP/plain.db" ".read $sql"
t_plain=$RP_LAST_SECS
rp_run corona preload -- "$SQLITE" -batch -bail "$RP_TMP/corona.db" ".read $sql"
t_corona=$RP_LAST_SECS
rp_same "$RP_TMP/plain.out" "$RP_TMP/corona.out" "sqlite3 query output"
rp_same "$RP_TMP/plain.err" "$RP_TMP/corona.err" "sqlite3 stderr"
[[ "$(tail -n 1 "$RP_TMP/corona.out")" == ok ]] || rp_fail "PRAGMA integrity_check under corona did not say ok: $(tail -n 3 "$RP_TMP/corona.out")"
grep -q '^count|100000|' "$RP_TMP/corona.out" || rp_fail "the 100000 inserted rows are not all there: $(grep '^count' "$RP_TMP/corona.out")"
rp_check_served corona "$SQLITE"
echo "[$RP_NAME] OK: $(wc -l <"$RP_TMP/corona.out") identical result lines; sqlite3 $t_plain s plain, $t_corona s with corona; total $(rp_secs) s"
