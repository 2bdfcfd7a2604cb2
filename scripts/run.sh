#!/usr/bin/env bash
# One entry point for a fresh machine: make (or reuse) the environment, build recon into it, run a job.
#
#   bash scripts/run.sh demo [recon demo args]     # the main job: the ReCon demo on the built-in data
#   bash scripts/run.sh test [pytest args]         # the test suite
#   bash scripts/run.sh bench [benchmarks/ops.py args]
#   bash scripts/run.sh shell                      # print the environment's path
#
# The virtualenv lives outside the checkout, keyed by a hash of requirements/ci-$RECON_ENV.txt, so it is
# built once per machine: ~/.cache/recon-ci/<env>-<hash> (override with RECON_VENV).
#   RECON_ENV=main  torch 2.14.1 + torchvision 0.29.1 (+ open_clip, sklearn, h5py ...)   [default]
#   RECON_ENV=cpu   torch 2.13.0 CPU build, the ops' dependencies only
# Build switches are setup.py's: FORCE_CUDA=1, FORCE_ONLY_CPU=1, TORCH_CUDA_ARCH_LIST, MAX_JOBS ...
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
job=${1:-test}
shift || true
profile=${RECON_ENV:-main}
req="$root/requirements/ci-$profile.txt"
[ -f "$req" ] || { echo "error: RECON_ENV=$profile: no $req (use main or cpu)" >&2; exit 2; }
py=${PYTHON:-python3}
key=$(sha256sum "$req" | cut -c1-12)
venv=${RECON_VENV:-$HOME/.cache/recon-ci/$profile-$key}
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

if [ -f "$venv/.complete" ] && [ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$pyver" ]; then
  echo "recon: $venv was made with another Python; rebuilding it" >&2
  rm -f "$venv/.complete"
fi
if [ ! -f "$venv/.complete" ]; then
  echo "recon: creating $venv from $req (once per machine; torch is large)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip setuptools wheel
  "$venv/bin/python" -m pip install -q -r "$req"
  touch "$venv/.complete"
fi

# Build against the environment's torch (never pip's isolated one): see setup.py.
echo "recon: building and installing recon into $venv" >&2
MAX_JOBS=${MAX_JOBS:-2} "$venv/bin/python" -m pip install -q --no-build-isolation --no-deps "$root"

cd "$root"
case "$job" in
  demo)  exec "$venv/bin/recon" demo "$@" ;;
  test)  exec "$venv/bin/pytest" "${@:-tests}" ;;
  bench) exec "$venv/bin/python" benchmarks/ops.py "$@" ;;
  shell) echo "$venv" ;;
  *) echo "usage: bash scripts/run.sh demo|test|bench|shell [args]" >&2; exit 2 ;;
esac
