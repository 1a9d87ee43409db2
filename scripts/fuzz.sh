#!/usr/bin/env bash
# Run one libFuzzer target of fuzz/ for a bounded time, starting from its committed corpus
# (fuzz/corpus/TARGET), and fail on a crash, a timeout or running out of memory. CI runs each
# target (spectrogram, checkpoint) for a minute, beside its wgpu parity stage.
#
# The target is built the way cargo-fuzz builds it (nightly rustc, SanitizerCoverage, address
# sanitizer, debug assertions, `--cfg fuzzing`) with plain cargo, so cargo-fuzz need not be
# installed; with it, `cd fuzz && cargo +nightly fuzz run TARGET` is the same. New inputs the
# run finds and any crash go under fuzz/target/runs/TARGET/ (the committed corpus is only
# read); a crash is printed with the command that replays it.
#
# Usage: scripts/fuzz.sh TARGET [SECONDS] [LIBFUZZER_FLAG...]   (default 60 s)
# Flags after SECONDS go to libFuzzer after the defaults and so override them, e.g. a longer
# -timeout for a run of an hour beside a build that competes for the cores.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS] [LIBFUZZER_FLAG...]}
seconds=${2:-60}
shift $(($# < 2 ? $# : 2))
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "error: fuzzing needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Zsanitizer=address \
-Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps build scripts and proc macros uninstrumented.
cargo +nightly build --release --locked --target "$triple" --bin "$target"

runs="target/runs/$target"
mkdir -p "$runs/corpus" "$runs/artifacts"
echo "fuzzing $target for $seconds s from corpus/$target ($(ls "corpus/$target" | wc -l) inputs)"
# -rss_limit_mb and -malloc_limit_mb make an input that allocates without bound a failure;
# -timeout makes one that hangs a failure.
"target/$triple/release/$target" "$runs/corpus" "corpus/$target" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$runs/artifacts/" -print_final_stats=1 "$@"
