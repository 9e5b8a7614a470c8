#!/usr/bin/env bash
# One-shot GPU check for an operator's machine: a thin wrapper around `gpumesh-agent gpu-check`
# (apps/provider-agent/src/cli/gpu-check-command.ts), which lists the GPUs, runs `doctor --json` for
# every backend, a checked 1024²–8192² matmul sweep on each backend that works, and one job through a
# throwaway local coordinator; README "Checking a real GPU" says what it measures.
#
#   scripts/gpu-check.sh                       # from a built checkout (npm ci && npm run build): table
#   scripts/gpu-check.sh --json > check.json   # JSON on stdout, the table on stderr
#   scripts/gpu-check.sh --max-size 2048       # a quicker sweep
#   AGENT=gpumesh-agent scripts/gpu-check.sh --coordinator http://127.0.0.1:8080   # installed agent,
#                                              # job through a running coordinator (GPUMESH_API_KEY)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Mesa's EGL on a host without a display (Dawn's OpenGL ES fallback) needs a platform.
export EGL_PLATFORM="${EGL_PLATFORM:-surfaceless}"
args=()
if [[ -z "${AGENT:-}" && -f "$here/dist/apps/coordinator/src/main.js" ]]; then
  args+=(--coordinator-main "$here/dist/apps/coordinator/src/main.js")
fi
if [[ -n "${AGENT:-}" ]]; then
  exec $AGENT gpu-check "${args[@]}" "$@"
fi
main="$here/apps/provider-agent/dist/main.js"
if [[ ! -f "$main" ]]; then
  echo "gpu-check: $main is missing: run npm ci && npm run build first (or set AGENT=gpumesh-agent)" >&2
  exit 2
fi
exec node "$main" gpu-check "${args[@]}" "$@"
