#!/usr/bin/env bash
# Install ambientmesh on a Debian or Ubuntu machine: system packages, a virtualenv in
# ./.venv with the package in it, and /usr/local/bin/ambientmesh. Run as root.
#   ./install.sh          runtime only
#   ./install.sh --dev    plus the test and lint tools
set -euo pipefail
cd "$(dirname "$0")"

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1

packages=(python3 python3-venv iproute2 nftables procps curl ca-certificates)
(( dev )) && packages+=(tcpdump stunnel4 psmisc)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  if [[ $EUID -ne 0 ]]; then
    echo "install.sh: missing system packages (${missing[*]}); run as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
if (( dev )); then
  .venv/bin/pip install -q -e '.[dev]'
else
  .venv/bin/pip install -q -e .
fi
if [[ $EUID -eq 0 ]]; then
  ln -sf "$PWD/.venv/bin/ambientmesh" /usr/local/bin/ambientmesh
fi
echo "installed: $(.venv/bin/ambientmesh version)"
