#!/bin/bash
# usage: bench/starvation/run.sh <out-dir> <nice-agents:0|1>   (after npm run build)
# Runs the 4096² matmul part of the tensors bench with the loop sampler preloaded in the coordinator,
# an external /health/live prober with absolute times, and (optionally) the two local agents reniced to 19.
d=$(realpath -m "$1"); niceagents=$2; here=$(dirname "$(realpath "$0")")
mkdir -p "$d"; rm -f "$d"/*.jsonl
cd "$here/../.."
uptime > $d/uptime-start.txt
LOOP_SAMPLER_OUT=$d/loop.jsonl BENCH_TENSORS_PART=matmul \
  BENCH_COORDINATOR_NODE_ARGS="--import $here/loop-sampler.mjs" \
  node dist/bench/run.js --only tensors > $d/bench.out 2> $d/bench.err &
bench=$!
echo $bench > $d/bench.pid
coord=""; prober=""; reniced=""
while kill -0 $bench 2>/dev/null; do
  if [ -z "$coord" ]; then coord=$(pgrep -P $bench -f 'coordinator/src/main.js' | head -1); fi
  if [ -n "$coord" ] && [ -z "$prober" ]; then
    for port in $(ss -ltnp 2>/dev/null | grep "pid=$coord," | awk '{print $4}' | sed 's/.*://' | sort -u); do
      if curl -sf -m 1 http://127.0.0.1:$port/health/live >/dev/null; then
        PROBE_OUT=$d/probes.jsonl node $here/prober.mjs http://127.0.0.1:$port/ &
        prober=$!; echo "prober on $port" >> $d/log.txt; break
      fi
    done
  fi
  if [ "$niceagents" = 1 ] && [ -n "$coord" ]; then
    # every thread of each agent (setpriority on Linux is per thread; worker threads made before
    # the renice keep their own value), again each round for threads made since
    for a in $(pgrep -P $coord); do
      for t in $(ls /proc/$a/task 2>/dev/null); do
        case " $reniced " in *" $t "*) ;; *) renice -n 19 -p $t >/dev/null 2>&1 && reniced="$reniced $t";; esac
      done
    done
  fi
  sleep 0.2
done
[ -n "$prober" ] && kill $prober
uptime > $d/uptime-end.txt
echo "done $d coord=$coord reniced-threads=$(echo $reniced | wc -w)" >> $d/log.txt
