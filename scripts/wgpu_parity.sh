#!/usr/bin/env bash
# The networks' parity tests (`encoders`, `biggan` of sound2scene-models) on the wgpu backend,
# through Vulkan: the same tests as on flex, against the same official PyTorch outputs, which
# shows that the model code does not depend on the backend. On a machine without a GPU the
# Vulkan device is Mesa's lavapipe (a CPU driver), installed here when missing and when run as
# root on Debian. CI runs this after the README's test command (see .ci/run).
#
# Each test runs in its own process. With lavapipe (Mesa 22.3), a process that used the device
# may be killed by a signal while it exits, after its tests have passed (wgpu's "segfault on
# exit" with some drivers; seen as SIGSEGV, and as glibc's "double free or corruption" abort):
# always after a process ran several tests, now and then after one. So a test whose process
# passed it and then died of a signal runs again, up to five times in all, and counts as passed
# only when a run exits cleanly; any other failure fails at once, with its output.
#
# Three tests take most of the stage's time on lavapipe (measured in CI: the encoders' parity
# on the full-width networks 371 s and 436 s, G's autodiff step 353 s, most of it compiling
# shaders) and check ops the others check too (convolutions, batch norm, pooling, linear
# layers, here and on flex in the README's test command). CI leaves them out to keep its run
# under an hour; `--all` runs them (do so on a real GPU, or before a release).
#
# Usage: scripts/wgpu_parity.sh [--all] [TEST_TARGET...]   (default: encoders biggan)
set -euo pipefail
cd "$(dirname "$0")/.."

slow_on_lavapipe=(
    encoders::audio_encoder_matches_official_avenet
    encoders::image_encoder_matches_swav_trunk
    biggan::generator_trains_on_an_autodiff_device
)
run_all=false
if [ "${1:-}" = "--all" ]; then
    run_all=true
    shift
fi

has_vulkan_driver() {
    compgen -G "/usr/share/vulkan/icd.d/*.json" > /dev/null ||
        compgen -G "/etc/vulkan/icd.d/*.json" > /dev/null
}

if ! has_vulkan_driver; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "installing Mesa's Vulkan drivers (lavapipe) and the Vulkan loader"
        # A mirror that drops a connection fails a step; three tries a minute apart ride that out.
        for try in 1 2 3; do
            if apt-get update -qq &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1; then
                break
            fi
            if [ $try -eq 3 ]; then
                echo "error: could not install Mesa's Vulkan drivers (apt-get failed three times)" >&2
                exit 1
            fi
            sleep 60
        done
    else
        echo "error: no Vulkan driver found; install one (Debian: apt-get install" \
            "mesa-vulkan-drivers libvulkan1) and run again" >&2
        exit 1
    fi
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(encoders biggan)
fi
# The workspace is selected so that features resolve as in the README's test command and only
# the crates that the wgpu feature changes are built again.
cargo_test=(cargo test --workspace --features sound2scene-models/wgpu --locked)

test_args=()
for target in "${targets[@]}"; do
    test_args+=(--test "$target")
done
"${cargo_test[@]}" "${test_args[@]}" --no-run

# True when the last run's test passed and the process then died of a signal (cargo reports
# "signal: 11, SIGSEGV" or "signal: 6, SIGABRT"): the driver's teardown, not the test.
exit_crash_after_pass() {
    grep -q "test result: ok. 1 passed; 0 failed" "$log" &&
        grep -Eq "\(signal: [0-9]+, SIG(SEGV|ABRT|BUS)" "$log"
}

attempts=5
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=()
total=0
for target in "${targets[@]}"; do
    names=$("${cargo_test[@]}" --test "$target" -q -- --list 2> /dev/null | sed -n 's/: test$//p')
    if [ -z "$names" ]; then
        echo "error: no tests listed in target $target" >&2
        exit 1
    fi
    for name in $names; do
        if ! $run_all && [[ " ${slow_on_lavapipe[*]} " == *" $target::$name "* ]]; then
            echo "skipped $target::$name (slow on lavapipe; scripts/wgpu_parity.sh --all runs it)"
            continue
        fi
        total=$((total + 1))
        for attempt in $(seq 1 $attempts); do
            start=$(date +%s)
            if "${cargo_test[@]}" --test "$target" -q -- --exact "$name" > "$log" 2>&1; then
                echo "ok      $target::$name ($(($(date +%s) - start)) s)"
                break
            fi
            if [ "$attempt" -lt $attempts ] && exit_crash_after_pass; then
                echo "again   $target::$name (it passed, then the process crashed at exit:" \
                    "$(grep -Eo 'signal: [0-9]+, SIG[A-Z]+' "$log" | head -n 1))"
                continue
            fi
            cat "$log"
            echo "FAILED  $target::$name"
            failed+=("$target::$name")
            break
        done
    done
done

echo "wgpu parity: $((total - ${#failed[@]})) of $total tests passed"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
