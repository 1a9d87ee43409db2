#!/usr/bin/env bash
# Picks the G checkpoint of a scripts/train_tiny.sh run on a validation world seed that neither
# training nor the claims table uses: each kept checkpoint's G_ema is measured with f_V and f_A
# by `eval-world --seed VAL_SEED --clips 200`, and the checkpoint whose pictures show the right
# class most often wins among those that keep both volume claims (volume_spearman and
# volume_spearman_waveform at 0.8 or more); when none keeps them, among all. "Most often" is the
# sum of the class accuracy from the sounds' features and from the true frames' features (400
# pictures judged instead of 200: both measure how well G draws the class it is given). Ties go
# to the earlier checkpoint.
#
# Usage: scripts/pick_gan_checkpoint.sh WORK F_V F_A WORLD
# Environment: BIN (default target/release/sound2scene), VAL_SEED (1000005), VAL_CLIPS (200).
# Prints one line per checkpoint to stderr (also WORK/pick/table.tsv) and the chosen
# checkpoint's directory to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$1
F_V=$2
F_A=$3
WORLD=$4
BIN=${BIN:-target/release/sound2scene}
VAL_SEED=${VAL_SEED:-1000005}
VAL_CLIPS=${VAL_CLIPS:-200}

PICK="$WORK/pick"
mkdir -p "$PICK"
printf 'checkpoint\tclass_accuracy\tclass_accuracy_true_feature\tvolume_spearman\tvolume_spearman_waveform\tr_at_1\n' \
    > "$PICK/table.tsv"
for CKPT in "$WORK"/gan/ckpt-*/; do
    CKPT=${CKPT%/}
    NAME=$(basename "$CKPT")
    [[ -f "$CKPT/generator_ema.bpk" ]] || continue
    DIR="$PICK/$NAME"
    mkdir -p "$DIR"
    ln -sf "$(realpath "$F_V")" "$DIR/image_encoder.bpk"
    ln -sf "$(realpath "$F_A")" "$DIR/audio_encoder.bpk"
    ln -sf "$(realpath "$CKPT/generator_ema.bpk")" "$DIR/generator.bpk"
    cp "$WORLD" "$DIR/world.json"
    if [[ ! -f "$DIR/eval.json" ]]; then
        "$BIN" eval-world --weights "$DIR" --seed "$VAL_SEED" --clips "$VAL_CLIPS" \
            --json "$DIR/eval.json.part" > "$DIR/eval.log" 2>&1
        mv "$DIR/eval.json.part" "$DIR/eval.json"
    fi
    jq -r --arg n "$NAME" \
        '[$n, .class_accuracy, .class_accuracy_true_feature, .volume_spearman,
          .volume_spearman_waveform, .r_at_1] | @tsv' \
        "$DIR/eval.json" >> "$PICK/table.tsv"
done
column -t "$PICK/table.tsv" >&2
CHOSEN=$(tail -n +2 "$PICK/table.tsv" | sort -t$'\t' -k1,1 | awk -F'\t' '
    { score = $2 + $3; keeps = ($4 >= 0.8 && $5 >= 0.8) }
    keeps && (best_keeps == "" || score > keeps_score) { best_keeps = $1; keeps_score = score }
    best_any == "" || score > any_score { best_any = $1; any_score = score }
    END { print (best_keeps != "" ? best_keeps : best_any) }')
[[ -n "$CHOSEN" ]] || { echo "no G checkpoint with generator_ema.bpk in $WORK/gan" >&2; exit 1; }
echo "chosen on seed $VAL_SEED: $CHOSEN" >&2
echo "$WORK/gan/$CHOSEN"
