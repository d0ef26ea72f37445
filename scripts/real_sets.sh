#!/usr/bin/env bash
# The defaults on real image folders (RESULTS.md, "Images nobody here generated"): for each set and variant,
# pretrain for a fixed budget, run the clustering stage, probe beside raw pixels and UMAP of raw pixels.
#
#   python scripts/make_real_sets.py --out data/real
#   python ../shared/data/make_photo_crops.py --out data/photos96 --size 96 --per-class 120 --seed 0
#   scripts/real_sets.sh runs/real "photos96=data/photos96 textures=data/real/textures ..." "auto off"
#
# Variants: auto (the defaults), off (the defaults with --hflip false), std (the defaults with --intensity
# standardize: colour and polarity kept), canon (the defaults with --intensity canonical: both removed), keepcol
# (standardize, and no colour augmentation: no hue or saturation jitter, no grey views), jitter and nojitter (the
# defaults with --colour-jitter true, false), old (rows, no mirroring, no patch embedding: the defaults before
# 2026-12-07), p4 (the defaults read as patches of 4 px: 8 x 8 of them on 32 px images), ae (the defaults with the
# sequence autoencoder for SimCLR). PRETRAIN and CLUSTER set the budgets (default 4m and 3m); SEED the seed of
# both (default 0; runs of another seed are named NAME-VARIANT-sSEED).
set -euo pipefail
out=${1:?runs folder}; sets=${2:?"name=folder ..."}; variants=${3:-auto}
PRETRAIN=${PRETRAIN:-4m}; CLUSTER=${CLUSTER:-3m}; SEED=${SEED:-0}
mkdir -p "$out"
declare -A flags=([auto]="" [off]="--hflip false" [std]="--intensity standardize" [canon]="--intensity canonical" [keepcol]="--intensity standardize --colour-jitter false" [jitter]="--colour-jitter true" [nojitter]="--colour-jitter false" [old]="--hflip false --view rows --input-proj 0 --resize none" [p4]="--view patches --patch 4" [ae]="--objective autoencoder")
for item in $sets; do
  name=${item%%=*}; folder=${item#*=}
  for v in $variants; do
    run="$out/$name-$v"; [ "$SEED" = 0 ] || run="$run-s$SEED"
    # shellcheck disable=SC2086
    unsuprnn pretrain --dataset "folder:$folder" --budget "$PRETRAIN" --out "$run" --seed "$SEED" --force --quiet ${flags[$v]} \
      2> "$run.pretrain.log" || { echo "$name $v: pretrain failed"; continue; }
    unsuprnn cluster --run "$run" --out "$run-cluster" --budget "$CLUSTER" --seed "$SEED" --force --quiet 2> "$run.cluster.log"
    unsuprnn probe --run "$run-cluster" --baselines raw,umap --json "$run.probe.json" --force --quiet > "$run.probe.txt"
    echo "$name $v: done"
  done
done
