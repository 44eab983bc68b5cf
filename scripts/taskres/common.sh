# TaskRes run bodies (sourced by scripts/taskres/*.sh), on top of scripts/runs.sh.
#
# Environment: DATA, OUTPUT (see runs.sh); SEEDS (default "1 2 3"); STRONG_BASE (folder of enhanced
# bases, default ./strong_base); BASE_TAG (backbone tag in their folder names, default rn50).
source "$(dirname "${BASH_SOURCE[0]}")/../runs.sh"

TASKRES_DATASETS="stanford_cars oxford_flowers caltech101 dtd fgvc_aircraft oxford_pets food101 ucf101 eurosat sun397 imagenet"
TASKRES_SHOTS="1 2 4 8 16"
STRONG_BASE=${STRONG_BASE:-./strong_base}
BASE_TAG=${BASE_TAG:-rn50}

taskres_cfg() {  # taskres_cfg DATASET SHOTS: the reference's config (lr 2e-4 for ImageNet; 200 epochs from 8 shots)
    local lr=2e-3 ep=100
    [ "$1" = imagenet ] && lr=2e-4
    [ "$2" -ge 8 ] && ep=200
    echo "adam_lr${lr}_B256_ep${ep}"
}

taskres_scale() {  # the residual scale alpha: 1.0 for Flowers, 0.5 elsewhere
    if [ "$1" = oxford_flowers ]; then echo 1.0; else echo 0.5; fi
}

dataset_name() {  # DATASET.NAME of configs/datasets/<dataset>.yaml (StanfordCars, ...)
    sed -n 's/^ *NAME: *"\{0,1\}\([A-Za-z0-9_]*\)"\{0,1\} *$/\1/p' "configs/datasets/$1.yaml"
}

strong_base_file() {  # strong_base_file DATASET SHOTS: where the enhanced base of that few-shot task lives
    echo "${STRONG_BASE}/$(dataset_name "$1")/${BASE_TAG}_$2shots/model.pth.tar"
}

# taskres_main DATASET CFG ENHANCE SHOTS SCALE [opts]: the reference's main.sh, over SEEDS.
# Regular runs write output/FINAL/debug/... as the reference; enhanced ones output/FINAL/enhanced/...
# (the reference wrote both into debug/, where they would skip each other).
taskres_main() {
    local dataset=$1 cfg=$2 enhance=$3 shots=$4 scale=$5; shift 5
    local run=debug seed dir
    [ "$enhance" != none ] && run=enhanced
    if [ "$enhance" != none ] && [ ! -f "$enhance" ]; then
        echo "No enhanced base at ${enhance}: train one with scripts/taskres/enhanced_base.sh ${dataset} ${shots}" \
             "or download the released RN50 ones (docs/METHODS.md, TaskRes)" >&2
        exit 1
    fi
    for seed in ${SEEDS:-1 2 3}; do
        dir=${OUTPUT}/FINAL/${RUN:-$run}/${dataset}/${cfg}_${shots}shots/seed${seed}
        run_train TaskRes "$cfg" "$dataset" "$seed" "$dir" \
            --enhanced-base "${enhance}" \
            DATASET.NUM_SHOTS "${shots}" \
            TRAINER.TaskRes.RESIDUAL_SCALE "${scale}" \
            "$@"
    done
}

# taskres_sweep regular|enhanced [opts]: every data set (DATASETS) x shots (SHOTS_LIST) x seed (SEEDS).
taskres_sweep() {
    local kind=$1; shift
    local dataset shots enhance
    for shots in ${SHOTS_LIST:-$TASKRES_SHOTS}; do
        for dataset in ${DATASETS:-$TASKRES_DATASETS}; do
            enhance=none
            [ "$kind" = enhanced ] && enhance=$(strong_base_file "$dataset" "$shots")
            taskres_main "$dataset" "$(taskres_cfg "$dataset" "$shots")" "$enhance" "$shots" \
                "$(taskres_scale "$dataset")" "$@"
        done
    done
}
