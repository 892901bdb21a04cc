"""0011-taobao_replay: the Taobao slice through `tern replay`, checked
against an independent reference of the co-occurrence definition.

The reference below re-implements DESIGN section 4 / feat_engine.h from
the text, in Python, and compares EVERY item (n, each neighbour's c, the
neighbour order by exact similarity then id) and every user (event
counts, first/last time). Two replays into fresh state directories must
give identical state and the same --emit records (sorted sets).
"""
import collections
import functools
import json
import math
import os
import random

from ternlib import Tests, data_dir, inspect, run, skip, workdir

W, T_MS = 20, 3600 * 1000
TYPES = {"pv": "VIEW", "fav": "FAVORITE", "cart": "CART", "buy": "PURCHASE"}


def reference(path):
    c = collections.defaultdict(lambda: collections.defaultdict(int))
    n = collections.defaultdict(int)
    windows = collections.defaultdict(list)   # user -> [(item, ts)], most recent first
    users = {}
    with open(path) as f:
        for line in f:
            user, item, _cat, behavior, ts = line.strip().split(",")
            t = int(ts) * 1000
            u = users.setdefault(user, {"events": collections.Counter(), "first": t, "last": t})
            u["events"][TYPES[behavior]] += 1
            u["last"] = t
            win = windows[user]
            for j, tj in win:
                if j != item and t - tj <= T_MS:
                    c[item][j] += 1
                    c[j][item] += 1
            n[item] += 1
            win[:] = [(item, t)] + [(j, tj) for j, tj in win if j != item]
            del win[W:]
    return c, n, users, windows


def neighbour_order(item, c, n):
    # s(i,a) > s(i,b)  <=>  c_a^2 * n_b > c_b^2 * n_a  (exact, no rounding)
    def cmp(a, b):
        lhs, rhs = c[item][a] ** 2 * n[b], c[item][b] ** 2 * n[a]
        if lhs != rhs:
            return -1 if lhs > rhs else 1
        ab, bb = a.encode(), b.encode()
        return -1 if ab < bb else (1 if ab > bb else 0)
    return sorted(c[item], key=functools.cmp_to_key(cmp))


class Taobao(Tests):
    def test_replay_matches_reference(self):
        data = data_dir()
        if not data:
            skip("../shared/data not found: the Taobao replay test needs it")
        path = os.path.join(data, "taobao_userbehavior_time_slice", "UserBehavior.csv")
        work = workdir("taobao")
        runs = []
        for k in (1, 2):
            state, emit = os.path.join(work, "state%d" % k), os.path.join(work, "emit%d" % k)
            out = run(["replay", "--input", path, "--format", "taobao-csv", "--state-dir", state,
                       "--emit", emit], timeout=900)
            summary = json.loads(out.stdout)
            print("replay %d: %s" % (k, out.stdout.strip()), flush=True)
            assert summary["events_in"] == 96168 and summary["dead_lettered"] == 0, summary
            items = run(["inspect", "--state-dir", state, "items"]).stdout
            runs.append((state, emit, items))

        c, n, users, _ = reference(path)
        docs = [json.loads(line) for line in runs[0][2].splitlines()]
        assert len(docs) == len(n) == 75384, (len(docs), len(n))
        for doc in docs:
            item = doc["item_id"]
            assert doc["n"] == n[item], (item, doc["n"], n[item])
            want = neighbour_order(item, c, n)
            got = [nb["item_id"] for nb in doc["neighbors"]]
            assert got == want, "item %s: neighbours %s, reference %s" % (item, got[:10], want[:10])
            for nb in doc["neighbors"]:
                assert nb["c"] == c[item][nb["item_id"]], (item, nb)
                s = c[item][nb["item_id"]] / math.sqrt(n[item] * n[nb["item_id"]])
                assert math.isclose(nb["score"], s, rel_tol=1e-12), (item, nb, s)

        # Every user: event counts per type, first and last time.
        user_docs = [json.loads(line) for line in
                     run(["inspect", "--state-dir", runs[0][0], "users"]).stdout.splitlines()]
        assert len(user_docs) == len(users) == 58732, (len(user_docs), len(users))
        for doc in user_docs:
            ref = users[doc["user_id"]]
            for t in ("VIEW", "CLICK", "CART", "FAVORITE", "PURCHASE", "IMPRESSION"):
                assert doc["events"][t] == ref["events"][t], (doc["user_id"], t, doc["events"])
            assert doc["first_ts_ms"] == ref["first"] and doc["last_ts_ms"] == ref["last"], doc
        # The single-user command gives the same documents.
        by_id = {d["user_id"]: d for d in user_docs}
        for user in random.Random(7).sample(sorted(users), 20):
            assert inspect(runs[0][0], "user", user) == by_id[user], user

        # Two replays: identical state and the same emitted records.
        assert runs[0][2] == runs[1][2], "inspect items differs between two replays"
        for name in sorted(os.listdir(runs[0][1])):
            with open(os.path.join(runs[0][1], name)) as a, open(os.path.join(runs[1][1], name)) as b:
                assert sorted(a) == sorted(b), "emit %s differs between two replays" % name
        assert "recommendations.jsonl" in os.listdir(runs[0][1])


if __name__ == "__main__":
    Taobao().main()
