#!/bin/sh
# Instructions per event of the pipeline's loop thread, repeatable whatever
# the machine's load (callgrind counts instructions, not time).
#
#   tests/bench/loop_instr.sh BUILD_DIR OUT_DIR [EVENTS USERS ITEMS SEED]
#
# Writes a seeded shop stream (tests/ternlib.py shop_stream; default 30000
# events, 3000 users, 5000 items, seed 7) and replays it twice in batches
# of 2000: under callgrind without --emit (the production path: --emit
# adds JSON encoding, ~40k instructions per event), then natively with
# --emit. Prints the loop thread's instructions per event (inclusive cost
# of rt_pipeline_run on the main thread, and of its per-event work), a
# hash of every emitted output topic and both state digests, so that two
# builds can be compared for cost and for identical outputs. OUT_DIR keeps callgrind.out.* for
# callgrind_annotate.
set -eu
build=$1
mkdir -p "$2"; out=$(cd "$2" && pwd)
events=${3:-30000}
users=${4:-3000}
items=${5:-5000}
seed=${6:-7}
here=$(cd "$(dirname "$0")/.." && pwd)
tern="$(cd "$build" && pwd)/tern"
rm -rf "$out"
mkdir -p "$out/emit"
stream="$out/stream-$events-$users-$items-$seed.jsonl"
python3 -c "import sys; sys.path.insert(0, '$here'); import ternlib; \
ternlib.shop_stream('$stream', $events, $seed, $users, $items)"
(cd "$out" && valgrind --tool=callgrind --separate-threads=yes \
        --callgrind-out-file=callgrind.out.%p "$tern" replay --format jsonl \
        --input "$stream" --state-dir "$out/state-cg" \
        -X batch.max_events=2000 -X batch.max_ms=600000 \
        >"$out/summary-cg.json" 2>"$out/valgrind.log")
"$tern" replay --format jsonl --input "$stream" --state-dir "$out/state" \
        --emit "$out/emit" -X batch.max_events=2000 -X batch.max_ms=600000 \
        >"$out/summary.json" 2>"$out/replay.log"

main=$(ls "$out"/callgrind.out.*-01 | head -n 1)
callgrind_annotate --inclusive=yes --threshold=100 "$main" >"$out/inclusive.txt"
# rt_pipeline_run: the whole loop thread (its idle polls vary a little
# with timing); process_message + commit_batch: the work per event alone.
for fn in rt_pipeline_run process_message commit_batch; do
        awk -v fn="$fn" -v n="$events" '$0 ~ ":" fn "[. ]" {
                gsub(",", "", $1); printf "%s_instr_per_event %.0f\n", fn, $1 / n; exit }' \
                "$out/inclusive.txt"
done
(cd "$out/emit" && for f in *.jsonl; do
        echo "output $f $(wc -l <"$f") $(sha256sum "$f" | cut -c1-16)"
done)
echo "digest $("$tern" inspect --state-dir "$out/state" digest)"
echo "digest_callgrind $("$tern" inspect --state-dir "$out/state-cg" digest)"
