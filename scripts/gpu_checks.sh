#!/usr/bin/env bash
# The checks to run on a machine with a GPU, from prebuilt release binaries (no Rust toolchain
# needed there): the parity tests of the networks through wgpu, f_A and G timed against
# PyTorch on CUDA on the same card, and the bundled model drawn on wgpu and on flex.
#
# Build here (the test binaries' names carry a hash; copy them under plain names):
#   CARGO_TARGET_DIR=target/wgpu cargo build --release --locked \
#       --features sound2scene/wgpu,sound2scene-models/wgpu -p sound2scene -p sound2scene-models \
#       --bin sound2scene --example time_models --test encoders --test biggan
# then on the GPU machine, from the repository root:
#   scripts/gpu_checks.sh BIN_DIR FIXTURES_DIR SAMPLES_DIR OUT_DIR [OFFICIAL_DIR]
# BIN_DIR holds any of sound2scene, time_models, encoders and biggan (each stage runs when its
# binary is there); OFFICIAL_DIR holds the official BigGAN_PyTorch/ folder for the PyTorch G.
# Everything printed also goes to OUT_DIR/checks.log, the bundled model's pictures to
# OUT_DIR/bell_{wgpu,flex}.png; a failing stage does not stop the others.
set -u
if [ $# -lt 4 ]; then
    sed -n '2,15p' "$0"
    exit 2
fi
bin=$1 fixtures=$2 samples=$3 out=$4 official=${5:-}
mkdir -p "$out"
exec > >(tee -a "$out/checks.log") 2>&1
npy=$(mktemp -d)

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then
    export VK_DRIVER_FILES=$icd
fi

export SOUND2SCENE_FIXTURES=$fixtures SOUND2SCENE_SAMPLES=$samples
for test in biggan encoders; do
    [ -x "$bin/$test" ] || continue
    start=$(date +%s%N)
    timeout 240 "$bin/$test"
    echo "$test: status $?, $(( ($(date +%s%N) - start) / 1000000 )) ms"
done

if [ -x "$bin/time_models" ]; then
    official_arg=()
    if [ -n "$official" ]; then
        official_arg=(--official "$official")
    fi
    timeout 240 python3 scripts/compare_speed.py --parts networks --device wgpu --torch-device cuda \
        --ours-bin "$bin/time_models" "${official_arg[@]}" --threads "$(nproc)" --runs 10 \
        --audio-batch 1 16 --generator-batch 1 8 64
fi

[ -x "$bin/sound2scene" ] || exit 0
for device in wgpu flex; do
    start=$(date +%s%N)
    timeout 120 "$bin/sound2scene" generate --device "$device" --audio assets/sounds/bell.wav \
        --count 4 --out "$out/bell_$device.png" --out-npy "$npy/bell_$device.npy"
    echo "generate on $device: status $?, wall $(( ($(date +%s%N) - start) / 1000000 )) ms"
done
python3 -c "
import numpy as np
a, b = (np.load(f'$npy/bell_{d}.npy') for d in ('wgpu', 'flex'))
print('bundled G output, wgpu vs flex: max abs diff', float(np.abs(a - b).max()), 'of', a.shape)
"
