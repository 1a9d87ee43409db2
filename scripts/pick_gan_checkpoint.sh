#!/usr/bin/env bash
# Picks the G checkpoint of a scripts/train_tiny.sh run on validation world seeds that neither
# training nor the claims table uses: each kept checkpoint's G_ema is measured with f_V and f_A
# by `eval-world --seed S --clips 200` for every S in VAL_SEEDS, and the checkpoint whose
# pictures show the right class most often wins among those that keep both volume claims
# (volume_spearman and volume_spearman_waveform at 0.8 or more on every seed); when none keeps
# them, among all, with a warning. "Most often" is the sum over the seeds of the class accuracy
# from the sounds' features and from the true frames' features (both measure how well G draws
# the class it is given). Ties go to the earlier checkpoint. One seed of 200 clips is not
# enough: the volume figures of one checkpoint differ by up to 0.3 between seeds
# (docs/results.md).
#
# Usage: scripts/pick_gan_checkpoint.sh WORK F_V F_A WORLD
# Environment: BIN (default target/release/sound2scene), VAL_SEEDS ("1000005 1000006"),
# VAL_CLIPS (200).
# Prints one line per checkpoint and seed to stderr (also WORK/pick/table.tsv, a checkpoint's
# rows together, in step order) and the chosen checkpoint's directory to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$1
F_V=$2
F_A=$3
WORLD=$4
BIN=${BIN:-target/release/sound2scene}
VAL_SEEDS=${VAL_SEEDS:-1000005 1000006}
VAL_CLIPS=${VAL_CLIPS:-200}

PICK="$WORK/pick"
mkdir -p "$PICK"
printf 'checkpoint\tseed\tclass_accuracy\tclass_accuracy_true_feature\tvolume_spearman\tvolume_spearman_waveform\tr_at_1\n' \
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
    for SEED in $VAL_SEEDS; do
        if [[ ! -f "$DIR/eval_$SEED.json" ]]; then
            "$BIN" eval-world --weights "$DIR" --seed "$SEED" --clips "$VAL_CLIPS" \
                --json "$DIR/eval_$SEED.json.part" > "$DIR/eval_$SEED.log" 2>&1 || {
                echo "eval-world failed on $NAME, seed $SEED; its log is $DIR/eval_$SEED.log" >&2
                exit 1
            }
            mv "$DIR/eval_$SEED.json.part" "$DIR/eval_$SEED.json"
        fi
        jq -r --arg n "$NAME" --arg s "$SEED" \
            '[$n, $s, .class_accuracy, .class_accuracy_true_feature, .volume_spearman,
              .volume_spearman_waveform, .r_at_1] | @tsv' \
            "$DIR/eval_$SEED.json" >> "$PICK/table.tsv"
    done
done
column -t "$PICK/table.tsv" >&2
CHOSEN=$(tail -n +2 "$PICK/table.tsv" | awk -F'\t' '
    $1 != name { if (name != "") done(); name = $1; score = 0; keeps = 1 }
    { score += $3 + $4; if ($5 < 0.8 || $6 < 0.8) keeps = 0 }
    function done() {
        if (keeps && (best_keeps == "" || score > keeps_score)) { best_keeps = name; keeps_score = score }
        if (best_any == "" || score > any_score) { best_any = name; any_score = score }
    }
    END {
        if (name != "") done()
        if (best_keeps != "") print best_keeps "\tkeeps"; else if (best_any != "") print best_any "\tnone"
    }')
[[ -n "$CHOSEN" ]] || { echo "no G checkpoint with generator_ema.bpk in $WORK/gan" >&2; exit 1; }
if [[ ${CHOSEN#*$'\t'} == none ]]; then
    echo "warning: no checkpoint keeps volume_spearman and volume_spearman_waveform at 0.8 or" \
        "more on every seed; the best class accuracy among all is chosen" >&2
fi
CHOSEN=${CHOSEN%%$'\t'*}
echo "chosen on seeds $VAL_SEEDS: $CHOSEN" >&2
echo "$WORK/gan/$CHOSEN"
