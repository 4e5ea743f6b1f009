#!/usr/bin/env bash
# How the CamVid baselines in submissions/ were made: every one is trained by `frugalbench train`
# (random initialisation, or the compressed weights for the fine-tuned variants) and then
# evaluated on all 233 test images by `frugalbench evaluate`.
#
#   FRUGALBENCH_CAMVID=../shared/datasets/camvid scripts/camvid_baselines.sh TARGET...
#
# TARGETs: fastscnn cgnet erfnet                        (architectures, full train split)
#          fastscnn-10img fastscnn-50img                (data budgets)
#          fastscnn-points fastscnn-scribble            (annotation budgets, all 367 images)
#          variants                                     (pruned / low-rank / int8, with and without fine-tuning)
#          evaluate                                     (every CamVid submission)
# Each training is resumable: run the same target again after an interruption. On CPU, use one
# thread per training (two trainings side by side on two cores); timings are in docs/training.md.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FRUGALBENCH_CAMVID:?set FRUGALBENCH_CAMVID to the CamVid folder}"
FB=".venv/bin/frugalbench"
TRAIN=("$FB" train --benchmark camvid --threads 1 --format json)
CLASSES='[sky, building, pole, road, pavement, tree, sign_symbol, fence, car, pedestrian, bicyclist]'

# write_manifest FOLDER NAME TECHNIQUE IMAGES ANNOTATION DESCRIPTION
write_manifest() {
    cat > "$1/submission.yaml" <<EOF
name: $2
authors: [frugalbench maintainers]
description: >-
  $6
technique: $3
benchmark: camvid
classes: $CLASSES
config: config.py
checkpoint: model.pth
training:
  images: $4
  annotation: $5
  notes: trained by frugalbench train (seed 0); the verified budget is in training_record.json
EOF
}

# label_frugal OUT IMAGES ANNOTATION ITERS NAME
label_frugal() {
    local out="submissions/$1" images=$2 annotation=$3 iters=$4
    "${TRAIN[@]}" submissions/fastscnn_camvid --out "$out" --images "$images" --annotation "$annotation" \
        --iters "$iters" --checkpoint-interval 100
    local count=$images
    [ "$images" = all ] && count=367
    local labels="their full masks"
    [ "$annotation" != full ] && labels="$annotation annotations derived from the full masks by frugalbench (docs/data.md)"
    write_manifest "$out" "$5" label-efficient "$count" "$annotation" \
        "Fast-SCNN (same config as fastscnn_camvid) trained by \`frugalbench train\` from random initialisation on $count CamVid training images with $labels, $iters iterations of batch 8, 256x256 crops. A shorter schedule than the 3,000 iterations of the full-data baseline."
}

variants() {
    local parent=submissions/fastscnn_camvid
    rm -rf submissions/fastscnn_camvid_{pruned50,lowrank50,int8,pruned50_ft,lowrank50_ft}
    "$FB" compress "$parent" --out submissions/fastscnn_camvid_pruned50 --prune 0.5 --structured
    "$FB" compress "$parent" --out submissions/fastscnn_camvid_lowrank50 --low-rank 0.5
    "$FB" compress "$parent" --out submissions/fastscnn_camvid_int8 --quantize int8
    "$FB" compress "$parent" --out submissions/fastscnn_camvid_pruned50_ft --prune 0.5 --structured --finetune 300
    "$FB" compress "$parent" --out submissions/fastscnn_camvid_lowrank50_ft --low-rank 0.5 --finetune 300
}

for target in "$@"; do
    case "$target" in
        fastscnn) "${TRAIN[@]}" submissions/fastscnn_camvid --checkpoint-interval 250 ;;
        cgnet) "${TRAIN[@]}" submissions/cgnet_camvid ;;
        erfnet) "${TRAIN[@]}" submissions/erfnet_camvid ;;
        fastscnn-10img) label_frugal fastscnn_camvid_10img 10 full 400 'Fast-SCNN, 10 CamVid images' ;;
        fastscnn-50img) label_frugal fastscnn_camvid_50img 50 full 600 'Fast-SCNN, 50 CamVid images' ;;
        fastscnn-points) label_frugal fastscnn_camvid_points all points 600 'Fast-SCNN, CamVid point labels' ;;
        fastscnn-scribble) label_frugal fastscnn_camvid_scribble all scribble 600 'Fast-SCNN, CamVid scribbles' ;;
        variants) variants ;;
        evaluate) "$FB" evaluate submissions/*camvid* --format json ;;
        *) echo "unknown target: $target" >&2; exit 2 ;;
    esac
done
