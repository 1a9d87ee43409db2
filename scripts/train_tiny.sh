#!/usr/bin/env bash
# Retrains the bundled model, sound2scene-tiny, from scratch on the procedural world with the
# project's own loops, all three stages, and installs it in assets/models/sound2scene-tiny/:
#
#   1. a world of CLIPS clips (seed SEED, described by WORLD: 4 s each, 64x64 frames, sources
#      at -9...+3 dB in recordings whose level varies by +-12 dB), each stored with the frame a
#      perfect pair selector picks (see `sound2scene synth --frame truth`);
#   2. f_V: SwAV on those frames (ResNet-18 layout, width 16, 32x32 crops; scripts/tiny_swav.json:
#      24 prototypes on 16-wide projections, two large crops over 50-100 % of the frame and no
#      small ones, no colour jitter or grayscale, since a class is a colour in this world);
#   3. G: IC-GAN at 64x64, width 16, conditioned on f_V's 128-wide features times 8
#      (scripts/tiny2_gan.json: G lr 4e-4, D lr 2e-4, 3-image neighbourhoods, EMA with decay
#      0.995 from step 1000, so that G_ema averages about the last 200 steps; 3000 steps);
#   4. f_A: alignment of a width-8 audio ResNet-18 onto the frozen f_V features (4 s clips);
#   5. G's checkpoint chosen on two validation world seeds (scripts/pick_gan_checkpoint.sh: the
#      best class accuracy among the checkpoints that keep both volume claims on both);
#   6. the three networks converted to f16 burnpack files, with the world's description
#      (world.json, which eval-world reads to hold out clips of the same kind).
#
# Usage: scripts/train_tiny.sh [WORK_DIR]   (default runs/tiny; a rerun resumes each stage)
# Environment: BIN (a built sound2scene binary; default: build it), SEED (1), CLIPS (2000),
# SWAV_STEPS (3000), GAN_STEPS (3000), ALIGN_EPOCHS (24), WORLD (scripts/tiny2_world.json),
# SWAV_CONFIG (scripts/tiny_swav.json), GAN_CONFIG (scripts/tiny2_gan.json), VAL_SEEDS
# ("1000005 1000006"; empty: G's last checkpoint, no choice), OUT (the model directory to
# write; default assets/models/sound2scene-tiny).
# Wall time on the 2-core development CPU: docs/results.md ("The bundled model"); WORK/times.log
# has each stage's. The first generation's recipe (32x32, one recording level, 1750 G steps):
#   WORLD=scripts/tiny_world.json GAN_CONFIG=scripts/tiny_gan.json GAN_STEPS=1750 VAL_SEEDS= \
#       scripts/train_tiny.sh runs/tiny1
# Measure the result with: sound2scene eval-world --seed 1000003 --clips 200
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${1:-runs/tiny}
SEED=${SEED:-1}
CLIPS=${CLIPS:-2000}
SWAV_STEPS=${SWAV_STEPS:-3000}
GAN_STEPS=${GAN_STEPS:-3000}
ALIGN_EPOCHS=${ALIGN_EPOCHS:-24}
WORLD=${WORLD:-scripts/tiny2_world.json}
SWAV_CONFIG=${SWAV_CONFIG:-scripts/tiny_swav.json}
GAN_CONFIG=${GAN_CONFIG:-scripts/tiny2_gan.json}
VAL_SEEDS=${VAL_SEEDS-1000005 1000006}
OUT=${OUT:-assets/models/sound2scene-tiny}

if [[ -z "${BIN:-}" ]]; then
    cargo build --release --locked --bin sound2scene
    BIN=target/release/sound2scene
fi
mkdir -p "$WORK" "$OUT"

# A stage's newest complete checkpoint directory.
latest() { echo "$1/$(tr -d '[:space:]' < "$1/latest")"; }
# --resume when the stage already has checkpoints.
resume() { [[ -f "$1/latest" ]] && echo "--resume" || true; }
# Prints the wall time of each stage as it ends (also into WORK/times.log).
mark() { echo "$(date -u +%FT%TZ) $1 done after ${SECONDS} s" | tee -a "$WORK/times.log"; }

if [[ ! -f "$WORK/world/ground_truth.json" ]]; then
    "$BIN" synth --out "$WORK/world" --clips "$CLIPS" --seed "$SEED" --world "$WORLD" \
        --frame truth
    mark world
fi

"$BIN" train-image --images "$WORK/world/images" --out "$WORK/swav" \
    --config "$SWAV_CONFIG" --steps "$SWAV_STEPS" --seed "$SEED" --checkpoint-every 250 \
    $(resume "$WORK/swav")
mark swav
F_V="$(latest "$WORK/swav")/image_encoder.bpk"

# G and f_A need only f_V, so they train side by side: G in the background (its log in
# WORK/gan.log), f_A in the foreground with its progress bar.
"$BIN" train-gan --images "$WORK/world" --image-encoder "$F_V" --out "$WORK/gan" \
    --config "$GAN_CONFIG" --steps "$GAN_STEPS" --seed "$SEED" \
    --checkpoint-every 250 --sample-every 250 --no-progress $(resume "$WORK/gan") \
    > "$WORK/gan.log" 2>&1 &
GAN_PID=$!
trap 'kill "$GAN_PID" 2> /dev/null || true' EXIT

"$BIN" train-align --data "$WORK/world" --image-encoder "$F_V" --out "$WORK/align" \
    --audio-width 8 --clip-seconds 4 --epochs "$ALIGN_EPOCHS" --batch-size 64 --seed "$SEED" \
    --checkpoint-every 0 $(resume "$WORK/align")
mark align
echo "waiting for the GAN (tail -f $WORK/gan.log)"
if ! wait "$GAN_PID"; then
    echo "train-gan failed; its log is $WORK/gan.log" >&2
    exit 1
fi
trap - EXIT
mark gan
F_A="$(latest "$WORK/align")/model.bpk"
[[ -f "$WORK/align/best" ]] && F_A="$(cd "$WORK/align" && echo "$PWD/$(tr -d '[:space:]' < best)")/model.bpk"
if [[ -n "$VAL_SEEDS" ]]; then
    G="$(BIN="$BIN" VAL_SEEDS="$VAL_SEEDS" scripts/pick_gan_checkpoint.sh "$WORK" "$F_V" "$F_A" \
        "$WORLD")/generator_ema.bpk"
    mark pick
else
    G="$(latest "$WORK/gan")/generator_ema.bpk"
fi

"$BIN" convert --from "$F_A" --to "$OUT/audio_encoder.bpk" --network audio --half
"$BIN" convert --from "$F_V" --to "$OUT/image_encoder.bpk" --network image --half
"$BIN" convert --from "$G" --to "$OUT/generator.bpk" --network generator --half
cp "$WORLD" "$OUT/world.json"
ls -l "$OUT"
