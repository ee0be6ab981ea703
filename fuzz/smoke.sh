#!/usr/bin/env bash
# Short smoke run of every fuzz target, seeded with fuzz/seeds.
# Usage: fuzz/smoke.sh [SECONDS_PER_TARGET]   (default 20)
# Needs cargo-fuzz and a nightly toolchain; says so and exits 0 without them.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke skipped: cargo-fuzz is not installed (cargo install cargo-fuzz)"
    exit 0
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz smoke skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
for t in translate translate_4to6 translate_6to4 parse_headers; do
    mkdir -p "corpus/$t"
    cargo +nightly fuzz run -O "$t" "corpus/$t" seeds -- -max_total_time="$secs" -rss_limit_mb=2048
done
