#!/usr/bin/env bash
# One-shot GPU check for an operator's machine (issue 22 part 5, first cut): lists the GPUs, runs
# `gpumesh-agent doctor --backend <b> --json` for every backend, then a checked matmul benchmark on each
# backend that works, and prints one JSON document (stdout) and a short table (stderr).
#
#   scripts/gpu-check.sh                 # from a built checkout (npm ci && npm run build)
#   AGENT="gpumesh-agent" scripts/gpu-check.sh   # with the installed agent
#
# Not yet: the 1024²–8192² sweep (benchmark uses its default sizes, up to 1024²) and one job through a
# local coordinator.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
agent_cmd="${AGENT:-node $here/apps/provider-agent/dist/main.js}"
backends=(tensorflow-gpu webgpu tensorflow wasm cpu)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export EGL_PLATFORM="${EGL_PLATFORM:-surfaceless}"

gpus="[]"
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(s.trim().split("\n").filter(Boolean).map(l=>{const [name,memory,driver]=l.split(",").map(x=>x.trim());return {source:"nvidia-smi",name,memory,driver};}))))')"
elif command -v lspci >/dev/null 2>&1; then
  gpus="$(lspci 2>/dev/null | grep -Ei 'vga|3d|display' |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(s.trim().split("\n").filter(Boolean).map(l=>({source:"lspci",name:l})))))')" || gpus="[]"
elif command -v system_profiler >/dev/null 2>&1; then
  gpus="$(system_profiler SPDisplaysDataType -json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.stringify((JSON.parse(s).SPDisplaysDataType||[]).map(g=>({source:"system_profiler",name:g.sppci_model}))))}catch{console.log("[]")}})')"
fi
echo "$gpus" >"$work/gpus.json"

for b in "${backends[@]}"; do
  echo "gpu-check: doctor --backend $b" >&2
  $agent_cmd doctor --backend "$b" --json --data-dir "$work/agent" >"$work/doctor-$b.out" 2>"$work/doctor-$b.err" || true
  if grep -q '"proven": true' "$work/doctor-$b.out"; then
    echo "gpu-check: benchmark --backend $b" >&2
    $agent_cmd benchmark --backend "$b" --json --data-dir "$work/agent" >"$work/bench-$b.out" 2>"$work/bench-$b.err" || true
  fi
done

node - "$work" "${backends[@]}" <<'EOF'
const fs = require('node:fs');
const [work, ...backends] = process.argv.slice(2);
const readJson = (f) => {
  try {
    const text = fs.readFileSync(`${work}/${f}`, 'utf8');
    return JSON.parse(text.slice(text.indexOf('{')));
  } catch {
    return null;
  }
};
const errorOf = (f) => {
  try {
    return fs.readFileSync(`${work}/${f}`, 'utf8').trim().split('\n').filter((l) => !/XDG_RUNTIME_DIR|^Warning|BackendVk|^\s*at /.test(l)).pop() ?? '';
  } catch {
    return '';
  }
};
const out = { gpus: JSON.parse(fs.readFileSync(`${work}/gpus.json`, 'utf8') || '[]'), backends: [] };
for (const b of backends) {
  const doctor = readJson(`doctor-${b}.out`);
  const bench = readJson(`bench-${b}.out`);
  out.backends.push({
    backend: b,
    ok: doctor?.backend?.proven === true,
    reason: doctor?.backend ? doctor.backend.warnings?.join('; ') ?? '' : errorOf(`doctor-${b}.err`),
    adapter: b === 'webgpu' ? (doctor?.webgpu?.adapter ?? null) : null,
    doctorGflops: doctor?.backend?.gflops ?? null,
    benchmark: bench ? { bestGflops: bench.bestGflops, bestSize: bench.bestSize, check: bench.check } : null,
  });
}
console.log(JSON.stringify(out, null, 2));
const note = (r) =>
  !r.ok ? r.reason.slice(0, 100) : r.adapter ? `${r.adapter.device} via ${r.adapter.dawnBackend}${r.adapter.software ? ' (software)' : ''}` : '';
const rows = out.backends.map(
  (r) => `${r.backend.padEnd(15)} ${(r.ok ? 'ok' : 'no').padEnd(3)} ${String(r.benchmark?.bestGflops ?? '-').padStart(8)}  ${note(r)}`,
);
console.error(['backend         ok  GFLOP/s   note', ...rows].join('\n'));
EOF
