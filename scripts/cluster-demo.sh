#!/usr/bin/env bash
# One batch over three "hosts" on this machine: a coordinator and a worker here, a worker in a
# network namespace (scripts/cluster-netns.sh) reaching Redis and the simulator over a veth; the
# worker here is killed with SIGKILL once a third of the lines are written. Prints the run's
# summary and checks that every custom_id has exactly one record. Needs root, iproute2, redis-server.
#
#   scripts/cluster-demo.sh [lines=100000] [workdir=/tmp/volley-cluster-demo]
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-100000}
WORK=${2:-/tmp/volley-cluster-demo}
VOLLEY="$PWD/packages/cli/bin/volley.js"
NETNS="$PWD/scripts/cluster-netns.sh"
NS=volley-demo
SUBNET=10.213.6
HOST="$SUBNET.1"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$NETNS" down "$NS"
}
trap cleanup EXIT

rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
node -e "
const fs = require('node:fs');
const out = fs.createWriteStream('in.jsonl');
for (let i = 0; i < $LINES; i++) out.write(JSON.stringify({ custom_id: 'r' + i, method: 'POST', url: '/v1/chat/completions', body: { model: 'sim', messages: [{ role: 'user', content: 'hello ' + i }] } }) + '\n');
out.end();"
"$NETNS" up "$NS" "$SUBNET"
redis-server --port 16390 --bind "127.0.0.1 $HOST" --protected-mode no --save '' --appendonly no >/dev/null &
PIDS+=($!)
node "$VOLLEY" sim --host "$HOST" --port 16389 --latency-ms 20 >/dev/null 2>&1 &
PIDS+=($!)
sleep 1
FLAGS=(--cluster "redis://$HOST:16390" --base-url "http://$HOST:16389/v1" --allow-insecure-http)
ip netns exec "$NS" node "$VOLLEY" worker "${FLAGS[@]}" --json >far.json 2>far.log &
PIDS+=($!)
far=$!
node "$VOLLEY" worker "${FLAGS[@]}" >near.log 2>&1 &
PIDS+=($!)
near=$!
sleep 1
node "$VOLLEY" run in.jsonl -o out.jsonl "${FLAGS[@]}" --progress none --json >summary.json 2>run.log &
run=$!
touch out.jsonl
while [ "$(wc -l <out.jsonl)" -lt $((LINES / 3)) ]; do sleep 0.2; done
kill -9 "$near"
echo "killed the worker on this host at $(wc -l <out.jsonl) records"
code=0
wait "$run" || code=$?
kill -TERM "$far" && wait "$far" || true
echo "coordinator exit $code; far worker: $(cat far.json)"
node -e "
const fs = require('node:fs');
const ids = fs.readFileSync('out.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l).custom_id);
const s = JSON.parse(fs.readFileSync('summary.json', 'utf8'));
console.log(JSON.stringify({ records: ids.length, unique: new Set(ids).size, expected: $LINES, extraBilledCalls: s.extraBilledCalls, wallMs: s.wallMs, cluster: s.cluster }, null, 2));
if (ids.length !== $LINES || new Set(ids).size !== $LINES) process.exit(1);"
