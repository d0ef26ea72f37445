#!/usr/bin/env bash
# The development protocol on real MNIST digits (issue: quality measured against the supervised reference).
#
#   scripts/mnist_protocol.sh [--device cpu|cuda] [--quick] [--out runs/protocol] [-- TRAIN FLAGS...]
#
# Data: the MNIST test set in idx format (idx:../shared/data/mnist, 10,000 digits), split 80/20
# stratified with seed 0. Pretrains without labels on the 8,000 (contrastive BiLSTM rows, autoencoder
# BiLSTM rows), trains the supervised reference on the same 8,000 with labels, probes every run with the
# 8,000 as bank / probe training set and scores on the 2,000, beside raw-pixel, PCA and random-encoder
# baselines. Prints a Markdown table and, last, one JSON line.
# --quick: a small encoder and one epoch each, to check the whole path in about 3 minutes on a 2-core CPU.
# Flags after `--` go to every pretrain/supervised command (e.g. -- --epochs 10 --hidden 128);
# CLUSTER_FLAGS (environment) go to the clustering stage on the contrastive run (e.g. "--epochs 20").
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA=(); DEVICE=auto; QUICK=0; OUT=runs/protocol; DATA=${DATA:-idx:../shared/data/mnist}
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2;;
    --quick) QUICK=1; shift;;
    --out) OUT=$2; shift 2;;
    --) shift; EXTRA=("$@"); break;;
    *) echo "error: unknown argument $1; use --device, --quick or --out" >&2; exit 2;;
  esac
done
COMMON=(--dataset "$DATA" --seed 0 --test-fraction 0.2 --device "$DEVICE" --force --quiet)
if [ "$QUICK" = 1 ]; then
  COMMON+=(--epochs 1 --hidden 32 --layers 1 --batch-size 256 --set objective.proj_hidden=64 --set objective.decoder_hidden=32)
fi
COMMON+=("${EXTRA[@]}")
mkdir -p "$OUT"
unsuprnn pretrain --config configs/mnist_rows_bilstm_contrastive.yaml "${COMMON[@]}" --out "$OUT/contrastive"
CLUSTER=(--device "$DEVICE" --force --quiet)
if [ "$QUICK" = 1 ]; then CLUSTER+=(--epochs 1 --selflabel-epochs 1 --heads 2); fi
# shellcheck disable=SC2206  # CLUSTER_FLAGS is a flag list, split on spaces on purpose
CLUSTER+=(${CLUSTER_FLAGS:-})
unsuprnn cluster --run "$OUT/contrastive" --out "$OUT/contrastive-cluster" "${CLUSTER[@]}"
unsuprnn pretrain --config configs/mnist_rows_bilstm_autoencoder.yaml "${COMMON[@]}" --out "$OUT/autoencoder"
unsuprnn supervised --config configs/mnist_rows_bilstm_contrastive.yaml "${COMMON[@]}" --out "$OUT/supervised"
for run in contrastive autoencoder; do
  unsuprnn probe --run "$OUT/$run" --method all --device "$DEVICE" --quiet \
    --baselines "raw,pca,random,supervised=$OUT/supervised" --json "$OUT/$run-probe.json" --force > /dev/null
done
unsuprnn probe --run "$OUT/contrastive-cluster" --method all --device "$DEVICE" --quiet \
  --baselines raw --json "$OUT/contrastive-cluster-probe.json" --force > /dev/null
unsuprnn probe --run "$OUT/supervised" --method all --device "$DEVICE" --quiet --json "$OUT/supervised-probe.json" --force > /dev/null
python scripts/protocol_table.py "$OUT"
