#!/usr/bin/env bash
# How the bundled zero-shot baseline submissions/fastscnn_attributes_camvid was made (docs/zero-shot.md):
#
#   FRUGALBENCH_CAMVID=../shared/datasets/camvid scripts/zero_shot_baseline.sh train calibrate evaluate
#
# train      frugalbench train --zero-shot split1 (resumable: run it again after an interruption)
# calibrate  calibrated stacking: fit the constant taken off seen-class scores on the val split
#            (python -m frugalbench.zero_shot.calibrate), written into config.py as `calibration=`
# evaluate   frugalbench evaluate on all 233 test images, and the same weights scored on seen classes
#            only (score_unseen=False, unseen IoU 0), in a copy under $FRUGALBENCH_WORK
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FRUGALBENCH_CAMVID:?set FRUGALBENCH_CAMVID to the CamVid folder}"
FB=".venv/bin/frugalbench"
SUB=submissions/fastscnn_attributes_camvid
DB="${FRUGALBENCH_DB:-data/frugalbench.duckdb}"

for target in "$@"; do
    case "$target" in
        train) "$FB" train "$SUB" --benchmark camvid --zero-shot split1 --threads 1 --db "$DB" --format json ;;
        calibrate) .venv/bin/python -m frugalbench.zero_shot.calibrate "$SUB" --split split1 --write --format json ;;
        evaluate)
            "$FB" evaluate "$SUB" --db "$DB" --format json
            seen_only="${FRUGALBENCH_WORK:-$HOME/.cache/frugalbench/work}/fastscnn_attributes_camvid_seen_only"
            rm -rf "$seen_only" && mkdir -p "$seen_only"
            cp "$SUB"/{config.py,model.pth,submission.yaml,training_record.json} "$seen_only"/
            sed -i 's/score_unseen=True/score_unseen=False/' "$seen_only/config.py"
            sed -i 's/^name: .*/name: Fast-SCNN + attribute head, seen classes only (comparison)/' \
                "$seen_only/submission.yaml"
            chmod -R o+rX "$seen_only"
            "$FB" evaluate "$seen_only" --db "$DB" --format json ;;
        *) echo "unknown target: $target" >&2; exit 2 ;;
    esac
done
