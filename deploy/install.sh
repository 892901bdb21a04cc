#!/usr/bin/env bash
# Install what tern needs to build and test on Debian 12. Idempotent: only
# missing packages are installed, and apt-get update runs only then.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  librdkafka-dev libavro-dev librocksdb-dev libopenblas-dev libyaml-dev
  # the HTTP endpoint (/metrics, /healthz, /readyz), the Schema Registry client
  libmicrohttpd-dev libcurl4-openssl-dev
  python3 kcat
  # checks of the deploy kit: docker-compose config, yamllint, systemd-analyze
  docker-compose yamllint systemd
  # the ASan+UBSan build, the libFuzzer targets, the format check
  clang libclang-rt-14-dev clang-format
)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "install: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
