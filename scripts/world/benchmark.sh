#!/bin/bash
# Every method in the generated world, one command: the world's data sets and CLIPs, then
#   base-to-new  ZeroshotCLIP, CoOp, CoCoOp, KgCoOp, IVLP, MaPLe, PromptSRC and TextRefiner on each
#                host (TextRefiner = on CoOp, TextRefiner-<HOST> on the others) on DATASETS;
#   few-shot     TaskRes and the linear probe (LinearProbe) at SHOTS_LIST shots against zero-shot;
#   PromptKD     a PromptSRC teacher on the large world CLIP (base classes, 16 shots), distilled
#                into the default world CLIP (PromptKD, and TextRefiner-PromptKD);
#   TTA          TPT, RLCF-prompt, RLCF-tune on the shifted sets TTA_SETS (default world CLIP as the
#                policy, the large one as the reward model) against zero-shot;
#   retrieval    RLCF-retrieval: zero-shot and RLCF image-text retrieval on a world retrieval set per
#                seed (scripts/world/retrieval.sh: the default world CLIP tuned, the large one rewards);
#   captioning   RLCF-captioning: ClipCap and CapDec without and with RLCF on sketches
#                (scripts/world/captioning.sh);
# with the configs/trainers/<TRAINER>/world_*.yaml configs (the reference configs scaled to the world
# by one rule, written in each). Writes OUT/<protocol>.md (mean ± std over seeds), OUT/<protocol>.png
# and OUT/results.json (python -m scripts.world.benchmark_report), OUT/effects.md (which of the real
# benchmark's effects it reproduces: python -m scripts.world.benchmark_effects); the runs are under
# OUT/output, their logs under OUT/logs. Zero-shot runs are deterministic and run once.
#
# usage: bash scripts/world/benchmark.sh [KEY VALUE ...]        (extra train.py config opts)
# env:   METHODS (default: all of the above), DATASETS (world_shapes), SEEDS ("1 2 3"),
#        OUT (output/world_benchmark), SHOTS_LIST ("1 4 16"), TTA_SETS (the three shifted sets),
#        TTA_PER_CLASS (test images per class for TTA, default 1 of 10), TTA_VIEWS (views per image, 64),
#        KD_DATASET (the PromptKD data set, default the first of DATASETS), KD_SEEDS (default SEEDS),
#        SHOTS (base-to-new and PromptKD-teacher shots, 16), JOBS (runs at a time, default 2), EPOCHS (one OPTIM.MAX_EPOCH for every training run: a smaller schedule, e.g. for tests),
#        WORLD_CLIP / WORLD_CLIP_LARGE (CLIP files instead of the world's default and large ones),
#        OMP_NUM_THREADS (torch threads per run, default 1), RETRIEVAL_IMAGES (images of a world retrieval
#        set, 200, 5 captions each), CAPTION_OPTS (extra python -m tools.world.captioning arguments).
# The default selection: world_shapes, seeds 1 2 3, every method, 1 shifted image per class for
# TTA; see docs/WORLD.md ("The benchmark").
set -e -o pipefail
cd "$(dirname "$0")/../.."
# One torch thread per run: JOBS runs share the cores, and two runs of two threads each on two cores
# made the small world models 7x slower (TPT on a 64-image shifted set: 45 s against 6 s)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=${OUT:-output/world_benchmark}
DATASETS=${DATASETS:-world_shapes}
SEEDS=${SEEDS:-1 2 3}
SHOTS_LIST=${SHOTS_LIST:-1 4 16}
TTA_SETS=${TTA_SETS:-world_objects_sketch world_objects_cartoon world_objects_noisy}
TTA_PER_CLASS=${TTA_PER_CLASS:-1}
TTA_VIEWS=${TTA_VIEWS:-64}
KD_DATASET=${KD_DATASET:-${DATASETS%% *}}
KD_SEEDS=${KD_SEEDS:-$SEEDS}
JOBS=${JOBS:-2}
SCHEDULE=${SCHEDULE:-world}
case "$SCHEDULE" in world|reference) ;; *)
    echo "Unknown SCHEDULE \"${SCHEDULE}\": world (the world configs) or reference (their cut schedules restored)" >&2; exit 2 ;;
esac
TTA_SETTING=${TTA_SETTING:-image-folder}
case "$TTA_SETTING" in image-folder|imagenet-scaled) ;; *)
    echo "Unknown TTA_SETTING \"${TTA_SETTING}\": image-folder (tta.py's defaults for image folders) or imagenet-scaled" \
         "(the ImageNet sets' views and steps, learning rates scaled to the world CLIP)" >&2; exit 2 ;;
esac
ALL_METHODS="ZeroshotCLIP CoOp CoCoOp KgCoOp IVLP MaPLe PromptSRC TextRefiner TextRefiner-CoCoOp
TextRefiner-KgCoOp TextRefiner-IVLP TextRefiner-MaPLe TextRefiner-PromptSRC TaskRes LinearProbe
PromptKD TextRefiner-PromptKD TPT RLCF-prompt RLCF-tune RLCF-retrieval RLCF-captioning"
METHODS=$(echo ${METHODS:-$ALL_METHODS})
for m in $METHODS; do
    case " $(echo $ALL_METHODS) " in *" $m "*) ;; *)
        echo "Unknown method \"$m\" in METHODS: choose from $(echo $ALL_METHODS)" >&2; exit 2 ;;
    esac
done
export DATA="${OUT}/data" OUTPUT="${OUT}/output" SHOTS=${SHOTS:-16}
LOGS="${OUT}/logs"
mkdir -p "${LOGS}"
START=$(date +%s)

has() { case " $METHODS " in *" $1 "*) return 0 ;; esac; return 1; }
has_any() { local m; for m in "$@"; do has "$m" && return 0; done; return 1; }
step() { echo "=== [$(( $(date +%s) - START ))s] $*"; }
run() {  # run LOGNAME COMMAND...: the command's output into LOGS/LOGNAME.log, its accuracy lines shown
    local log="${LOGS}/$1.log"; shift
    if ! "$@" > "$log" 2>&1; then
        echo "FAILED: $* (log: ${log})" >&2; tail -20 "$log" >&2; exit 1
    fi
    grep -E "^\* accuracy|^=> Acc" "$log" | tail -1 | sed 's/^/    /' || true
}
# jobs: up to JOBS chains of runs at a time (each train.py process spends most of its few seconds
# starting up, so two at a time use both cores); a stage waits for all of its chains
PIDS=()
job() { while [ "$(jobs -rp | wc -l)" -ge "${JOBS}" ]; do wait -n || true; done; "$@" & PIDS+=($!); }
wait_jobs() {
    local pid failed=0
    for pid in "${PIDS[@]}"; do wait "$pid" || failed=1; done
    PIDS=()
    [ "$failed" = 0 ] || { echo "A run failed (its log is named above)" >&2; exit 1; }
}
TRAIN_OPTS=()
[ -n "${EPOCHS:-}" ] && TRAIN_OPTS=(OPTIM.MAX_EPOCH "${EPOCHS}")

step "World data sets"
# shellcheck disable=SC2086
run data python -m tools.world.data --root "${DATA}" --names ${DATASETS} ${TTA_SETS}

step "World CLIPs"
if [ -z "${WORLD_CLIP:-}" ]; then
    run clip python -m tools.world.pretrain
    WORLD_CLIP=$(python -m tools.world.pretrain --print-path)
fi
if [ -z "${WORLD_CLIP_LARGE:-}" ] && has_any PromptKD TextRefiner-PromptKD RLCF-prompt RLCF-tune RLCF-retrieval; then
    run clip_large python -m tools.world.pretrain --large
    WORLD_CLIP_LARGE=$(python -m tools.world.pretrain --large --print-path)
fi
echo "    default: ${WORLD_CLIP}"; echo "    large:   ${WORLD_CLIP_LARGE:-(not needed)}"
OPTS=(MODEL.BACKBONE.PATH "${WORLD_CLIP}" "$@")

# ---- RLCF's other tasks: captioning and retrieval (single long runs, started first) ----------
if has RLCF-captioning; then
    [ -n "${EPOCHS:-}" ] && CAPTION_OPTS="--epochs ${EPOCHS} ${CAPTION_OPTS:-}"
    step "Captioning: ClipCap and CapDec without and with RLCF, seeds ${SEEDS}"
    # shellcheck disable=SC2086
    job run captioning env OUT="${OUTPUT}/captioning" SEEDS="${SEEDS}" \
        bash scripts/world/captioning.sh --clip "${WORLD_CLIP}" ${CAPTION_OPTS:-}
fi
if has RLCF-retrieval; then
    step "Retrieval: zero-shot and RLCF both ways, seeds ${SEEDS}"
    job run retrieval env OUT="${OUTPUT}/retrieval" SEEDS="${SEEDS}" IMAGES="${RETRIEVAL_IMAGES:-200}" \
        STUDENT="${WORLD_CLIP}" REWARD="${WORLD_CLIP_LARGE}" bash scripts/world/retrieval.sh
fi

# ---- PromptKD: a PromptSRC teacher on the large world CLIP, distilled into the default one --
# (the longest chain of the other runs)
TEACHER_OUT="${OUT}/teacher"
TEACHER_CFG=world_large_4+4ctx
kd_chain() {  # the teacher (base classes, 16 shots, seed 1; tested on the new classes), then the students
    local teacher_opts=(MODEL.BACKBONE.PATH "${WORLD_CLIP_LARGE}" "${TRAIN_OPTS[@]}") dir file seed method folder cfg
    step "${KD_DATASET}: PromptSRC teacher on the large world CLIP"
    run "kd_${KD_DATASET}_teacher_train" env OUTPUT="${TEACHER_OUT}" CFG="${TEACHER_CFG}" \
        bash scripts/promptsrc/base2new_train.sh "${KD_DATASET}" 1 "${teacher_opts[@]}"
    run "kd_${KD_DATASET}_teacher_test" env OUTPUT="${TEACHER_OUT}" CFG="${TEACHER_CFG}" LOADEP=last \
        bash scripts/promptsrc/base2new_test.sh "${KD_DATASET}" 1 "${teacher_opts[@]}"
    dir="${TEACHER_OUT}/base2new/train_base/${KD_DATASET}/shots_${SHOTS}/PromptSRC/${TEACHER_CFG}/seed1/VLPromptLearner"
    file="${dir}/$(ls "${dir}" | sed -n 's/^\(model\.pth\.tar-[0-9]*\)$/\1/p' | sort -t- -k2 -n | tail -1)"
    for seed in $KD_SEEDS; do
        for method in PromptKD TextRefiner-PromptKD; do
            has "$method" || continue
            folder=promptkd cfg=world_4+4ctx
            [ "$method" = TextRefiner-PromptKD ] && folder=textrefiner_promptkd cfg=world_promptkd_4+4ctx
            step "${KD_DATASET} seed ${seed}: ${method} from the large teacher"
            # the students keep their scripts' shots (PromptKD: the whole train split, SHOTS 0;
            # TextRefiner-PromptKD: 16), as the reference's scripts; SHOTS is the teacher's
            run "kd_${KD_DATASET}_${method}_seed${seed}" env -u SHOTS TEACHER="${file}" CFG="$cfg" \
                bash "scripts/${folder}/base2new_train.sh" "${KD_DATASET}" "${seed}" "${OPTS[@]}" \
                TRAINER.PROMPTKD.TEACHER_BACKBONE_PATH "${WORLD_CLIP_LARGE}" "${TRAIN_OPTS[@]}"
        done
    done
}
has_any PromptKD TextRefiner-PromptKD && job kd_chain

# ---- base-to-new ---------------------------------------------------------------------------
# method -> "script folder, CFG, HOST". The test step loads the last epoch (LOADEP=last: the
# reference's LOADEP is its configs' last epoch); TextRefiner keeps its scripts' defaults (the best
# val epoch on the CoOp layout, as its best_val configs; the last one on the others).
b2n_spec() {
    case "$1" in
        CoOp) echo "coop world_ctxv1 -" ;;
        CoCoOp) echo "cocoop world_c4_ctxv1 -" ;;
        KgCoOp) echo "kgcoop world_ctxv1 -" ;;
        IVLP) echo "ivlp world_2+2ctx -" ;;
        MaPLe) echo "maple world_2ctx -" ;;
        PromptSRC) echo "promptsrc world_4+4ctx -" ;;
        TextRefiner) echo "textrefiner world_ctxv1 CoOp" ;;
        TextRefiner-CoCoOp) echo "textrefiner world_cocoop_c4_ctxv1 CoCoOp" ;;
        TextRefiner-KgCoOp) echo "textrefiner world_kgcoop_ctxv1 KgCoOp" ;;
        TextRefiner-IVLP) echo "textrefiner world_ivlp_2+2ctx IVLP" ;;
        TextRefiner-MaPLe) echo "textrefiner world_maple_2ctx MaPLe" ;;
        TextRefiner-PromptSRC) echo "textrefiner world_promptsrc_4+4ctx PromptSRC" ;;
        *) return 1 ;;
    esac
}
reference_schedule() {  # the reference's epochs and lr where the world config cut them (SCHEDULE=reference)
    case "$1" in
        CoOp|TextRefiner) echo "OPTIM.MAX_EPOCH 200 OPTIM.LR 0.002" ;;  # TextRefiner on CoOp: its host's, as world_ctxv1
        KgCoOp|TextRefiner-KgCoOp) echo "OPTIM.MAX_EPOCH 100 OPTIM.LR 0.002" ;;
        TaskRes*) [ "${1#TaskRes}" -ge 8 ] && echo "OPTIM.MAX_EPOCH 200 OPTIM.LR 0.002" || echo "OPTIM.MAX_EPOCH 100 OPTIM.LR 0.002" ;;
    esac
}
b2n_chain() {  # b2n_chain DATASET METHOD SEED: train on the base classes, then test on the new ones
    local dataset=$1 method=$2 seed=$3 spec folder cfg host
    spec=$(b2n_spec "$method")
    read -r folder cfg host <<< "$spec"
    local env_args=(CFG="$cfg")
    [ "$host" != - ] && env_args+=(HOST="$host")
    [ "$folder" != textrefiner ] && env_args+=(LOADEP=last)
    local schedule=()
    [ "$SCHEDULE" = reference ] && schedule=($(reference_schedule "$method"))
    step "${dataset} seed ${seed}: ${method} (train on base, test on new)"
    run "b2n_${dataset}_${method}_seed${seed}_train" env "${env_args[@]}" \
        bash "scripts/${folder}/base2new_train.sh" "${dataset}" "${seed}" "${OPTS[@]}" "${schedule[@]}" "${TRAIN_OPTS[@]}"
    run "b2n_${dataset}_${method}_seed${seed}_test" env "${env_args[@]}" \
        bash "scripts/${folder}/base2new_test.sh" "${dataset}" "${seed}" "${OPTS[@]}" "${TRAIN_OPTS[@]}"
    step "${dataset} seed ${seed}: ${method} done"
}
for DATASET in $DATASETS; do
    if has ZeroshotCLIP; then
        job run "b2n_${DATASET}_ZeroshotCLIP" bash scripts/textrefiner/zeroshot_base2new.sh "${DATASET}" world_ctxv1 1 "${OPTS[@]}"
    fi
    for METHOD in $METHODS; do
        b2n_spec "$METHOD" > /dev/null || continue
        for SEED in $SEEDS; do
            job b2n_chain "${DATASET}" "${METHOD}" "${SEED}"
        done
    done
done

# ---- few-shot: TaskRes and the linear probe against zero-shot ------------------------------
taskres_job() {  # taskres_job DATASET SHOTS: TaskRes over SEEDS
    local cfg=world_ep10
    [ "$2" -ge 8 ] && cfg=world_ep20  # as the reference: the longer schedule from 8 shots
    local schedule=()
    [ "$SCHEDULE" = reference ] && schedule=($(reference_schedule "TaskRes$2"))
    step "$1: TaskRes, $2 shots, seeds ${SEEDS}"
    run "fewshot_$1_TaskRes_$2shots" env SEEDS="${SEEDS}" \
        bash scripts/taskres/main.sh "$1" "$cfg" none "$2" 0.5 "${OPTS[@]}" "${schedule[@]}" "${TRAIN_OPTS[@]}"
}
probe_job() {  # probe_job DATASET SHOTS: the linear probe over SEEDS
    step "$1: linear probe, $2 shots, seeds ${SEEDS}"
    # shellcheck disable=SC2086
    run "fewshot_$1_LinearProbe_$2shots" python -m lpclip.linear_probe --root "${DATA}" \
        --dataset-config-file "configs/datasets/$1.yaml" --config-file configs/trainers/CoOp/world_ctxv1.yaml \
        --num-shots "$2" --seeds ${SEEDS} --output-dir "${OUTPUT}/lpclip/$1" "${OPTS[@]}"
}
if has_any TaskRes LinearProbe; then
    for DATASET in $DATASETS; do
        job run "fewshot_${DATASET}_ZeroshotCLIP" bash scripts/coop/zeroshot.sh "${DATASET}" world_ctxv1 "${OPTS[@]}"
        for K in $SHOTS_LIST; do
            has TaskRes && job taskres_job "${DATASET}" "$K"
            has LinearProbe && job probe_job "${DATASET}" "$K"
        done
    done
fi

# ---- TTA on the shifted sets: the default world CLIP adapts, the large one rewards -----------
if has_any TPT RLCF-prompt RLCF-tune; then
    TTA_DATA="${OUT}/tta_data"
    step "TTA image folders: ${TTA_PER_CLASS} test images per class of ${TTA_SETS}"
    # shellcheck disable=SC2086
    run tta_data python -m tools.world.tta_folders --root "${DATA}" --out "${TTA_DATA}" \
        --per-class "${TTA_PER_CLASS}" --sets ${TTA_SETS}
    FOLDERS=()
    for s in $TTA_SETS; do FOLDERS+=("${TTA_DATA}/${s}"); done
    # image-folder: tta.py's defaults for an image folder (AugMix views, the fine-grained sets' step
    # counts). imagenet-scaled: the shifted sets adapted as the reference adapts ImageNet's (crop + flip
    # views, the ImageNet sets' steps) at learning rates at which one image's update moves the adapted
    # features as far as it does at ViT-B/16's shape (python -m tools.world.tta_step_size; docs/WORLD.md)
    setting_flags() {  # setting_flags METHOD
        [ "$TTA_SETTING" = imagenet-scaled ] || return 0
        case $1 in
            tpt) echo --augmix 0 --tta_steps 1 --lr 0.03 ;;
            rlcf-prompt) echo --augmix 0 --tta_steps 3 --lr 0.022 ;;
            rlcf-tune) echo --augmix 0 --tta_steps 3 --lr 0.00024 ;;
        esac
    }
    tta() {  # tta METHOD SEED [flags]
        local method=$1 seed=$2; shift 2
        step "TTA seed ${seed}: ${method}"
        # shellcheck disable=SC2046
        run "tta_${method}_seed${seed}" python tta.py --method "$method" --image_folder "${FOLDERS[@]}" \
            -a "${WORLD_CLIP}" --workers 0 --prec fp32 -b "${TTA_VIEWS}" --seed "$seed" \
            --output "${OUTPUT}/tta/${method}/seed${seed}" $(setting_flags "$method") "$@"
    }
    job tta zeroshot 1
    for SEED in $SEEDS; do
        has TPT && job tta tpt "$SEED"
        has RLCF-prompt && job tta rlcf-prompt "$SEED" --reward_arch "${WORLD_CLIP_LARGE}"
        has RLCF-tune && job tta rlcf-tune "$SEED" --reward_arch "${WORLD_CLIP_LARGE}" --ctx_init "a photo of a"
    done
fi
wait_jobs

step "Tables, plots and results.json"
WALL=$(( $(date +%s) - START ))
# shellcheck disable=SC2086
python -m scripts.world.benchmark_report --out "${OUT}" --wall-time "${WALL}" --methods ${METHODS}
python -m scripts.world.benchmark_effects "${OUT}"
echo "Benchmark finished in $(( $(date +%s) - START ))s"
