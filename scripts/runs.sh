# Shared bodies of the per-method run scripts (sourced by scripts/<method>/*.sh).
#
# Environment: DATA (data root, default ./data), OUTPUT (output root, default output),
# CFG, SHOTS, LOADEP (see each function). GPUs are chosen with CUDA_VISIBLE_DEVICES as usual;
# NPROC=N runs train.py as N processes through torchrun (docs/ENGINE.md, "Multi-GPU and multi-process").
# Arguments after the script's own ones are passed to train.py as KEY VALUE config opts.
# A rerun goes through train.py's rule for an output folder that holds a run: a finished run with the
# same inputs is skipped ("Oops! The results exist at ..."), an unfinished one resumes, one made from
# other inputs is refused; a test step evaluates again when its training run changed since, and
# refuses a training run that has not finished (docs/WHAT_HAPPENS_WHEN.md).

DATA=${DATA:-./data}
OUTPUT=${OUTPUT:-output}

source "$(dirname "${BASH_SOURCE[0]}")/launch.sh"

train_py() {  # python train.py ..., or torchrun with NPROC processes
    launch train.py "$@"
}

usage_if_missing() {  # usage_if_missing "<usage>" "$@" (needs at least as many args as usage names)
    local usage=$1; shift
    local needed
    needed=$(echo "$usage" | wc -w)
    if [ "$#" -lt "$needed" ]; then
        echo "usage: bash $0 $usage [KEY VALUE ...]" >&2
        exit 2
    fi
}

load_epoch_args() {  # LOADEP: "best" (model-best.pth.tar), "last" (highest model.pth.tar-N) or a number
    local model_dir=$1 first_model=$2 loadep=$3
    case "$loadep" in
        best) echo "" ;;
        last)
            local n
            n=$(ls "${model_dir}/${first_model}" 2>/dev/null | sed -n 's/^model\.pth\.tar-\([0-9]*\)$/\1/p' | sort -n | tail -1)
            if [ -z "$n" ]; then
                echo "No model.pth.tar-N in ${model_dir}/${first_model}: run the matching train script first" >&2
                exit 1
            fi
            echo "--load-epoch $n" ;;
        *) echo "--load-epoch $loadep" ;;
    esac
}

# base2new_train TRAINER CFG NCTX DATASET SEED [opts]: train on the base classes.
base2new_train() {
    local trainer=$1 cfg=$2 nctx=$3 dataset=$4 seed=$5; shift 5
    local shots=${SHOTS:-16} csc=False ctp=end
    local dir=${OUTPUT}/base2new/train_base/${dataset}/${trainer}/${cfg}_${shots}shots/nctx${nctx}_csc${csc}_ctp${ctp}/seed${seed}
    run_train "$trainer" "$cfg" "$dataset" "$seed" "$dir" \
        TRAINER.COOP.N_CTX "${nctx}" \
        TRAINER.COOP.CSC "${csc}" \
        TRAINER.COOP.CLASS_TOKEN_POSITION "${ctp}" \
        DATASET.NUM_SHOTS "${shots}" \
        DATASET.SUBSAMPLE_CLASSES base \
        "$@"
}

# run_train TRAINER CFG DATASET SEED DIR [args and opts]: one train.py run with the common flags.
run_train() {
    local trainer=$1 cfg=$2 dataset=$3 seed=$4 dir=$5; shift 5
    train_py \
        --root "${DATA}" \
        --seed "${seed}" \
        --trainer "${trainer}" \
        --dataset-config-file "configs/datasets/${dataset}.yaml" \
        --config-file "configs/trainers/${trainer}/${cfg}.yaml" \
        --output-dir "${dir}" \
        "$@"
}

# run_eval TRAINER CFG DATASET SEED DIR MODEL_DIR LOADEP TRAIN_HINT [opts]: evaluate a trained model.
run_eval() {
    local trainer=$1 cfg=$2 dataset=$3 seed=$4 dir=$5 model_dir=$6 loadep=$7 hint=$8; shift 8
    if [ ! -d "$model_dir" ]; then
        echo "No trained model at ${model_dir}: run scripts/$(basename "$(dirname "$0")")/${hint} first" >&2
        exit 1
    fi
    local epoch_args first_model
    first_model=$(cd "$model_dir" && ls -d */ 2>/dev/null | head -1)  # prompt_learner/, VLPromptLearner/ ...
    epoch_args=$(load_epoch_args "$model_dir" "${first_model%/}" "$loadep")
    echo "Loading ${model_dir} (${epoch_args:-model-best.pth.tar})"
    # shellcheck disable=SC2086
    run_train "$trainer" "$cfg" "$dataset" "$seed" "$dir" --model-dir "${model_dir}" ${epoch_args} --eval-only "$@"
}

# base2new_test TRAINER CFG NCTX LOADEP DATASET SEED [opts]: evaluate the base-trained model on the new classes.
base2new_test() {
    local trainer=$1 cfg=$2 nctx=$3 loadep=$4 dataset=$5 seed=$6; shift 6
    local shots=${SHOTS:-16} csc=False ctp=end sub=new
    local common=${dataset}/${trainer}/${cfg}_${shots}shots/nctx${nctx}_csc${csc}_ctp${ctp}/seed${seed}
    local dir=${OUTPUT}/base2new/test_${sub}/${common}
    run_eval "$trainer" "$cfg" "$dataset" "$seed" "$dir" "${OUTPUT}/base2new/train_base/${common}" "$loadep" \
        "base2new_train.sh ${dataset} ${seed}" \
        TRAINER.COOP.N_CTX "${nctx}" \
        TRAINER.COOP.CSC "${csc}" \
        TRAINER.COOP.CLASS_TOKEN_POSITION "${ctp}" \
        DATASET.NUM_SHOTS "${shots}" \
        DATASET.SUBSAMPLE_CLASSES "${sub}" \
        "$@"
}

# xd_train TRAINER CFG SEED [opts]: train on ImageNet (all classes, 16 shots; SOURCE=<dataset> to change).
xd_train() {
    local trainer=$1 cfg=$2 seed=$3; shift 3
    local shots=${SHOTS:-16} dataset=${SOURCE:-imagenet}
    local dir=${OUTPUT}/xd/${dataset}/${trainer}/${cfg}_${shots}shots/seed${seed}
    run_train "$trainer" "$cfg" "$dataset" "$seed" "$dir" DATASET.NUM_SHOTS "${shots}" "$@"
}

# xd_test TRAINER CFG LOADEP DATASET SEED [opts]: evaluate the ImageNet model on another data set.
xd_test() {
    local trainer=$1 cfg=$2 loadep=$3 dataset=$4 seed=$5; shift 5
    local shots=${SHOTS:-16} source=${SOURCE:-imagenet}
    local dir=${OUTPUT}/evaluation/xd/${trainer}/${cfg}_${shots}shots/${dataset}/seed${seed}
    run_eval "$trainer" "$cfg" "$dataset" "$seed" "$dir" "${OUTPUT}/xd/${source}/${trainer}/${cfg}_${shots}shots/seed${seed}" \
        "$loadep" "xd_train.sh ${seed}" "$@"
}

# zeroshot DATASET CFG [opts]: ZeroshotCLIP with configs/trainers/CoOp/CFG.yaml.
zeroshot() {
    local dataset=$1 cfg=$2; shift 2
    train_py \
        --root "${DATA}" \
        --trainer ZeroshotCLIP \
        --dataset-config-file "configs/datasets/${dataset}.yaml" \
        --config-file "configs/trainers/CoOp/${cfg}.yaml" \
        --output-dir "${OUTPUT}/ZeroshotCLIP/${cfg}/${dataset}" \
        --eval-only \
        "$@"
}

# zeroshot_base2new DATASET CFG SEED [opts]: ZeroshotCLIP (configs/trainers/CoOp/CFG.yaml) on the base
# classes (into train_base/) and on the new classes (into test_new/), so that
# parse_test_res.py --base2new lists it beside the trained methods.
zeroshot_base2new() {
    local dataset=$1 cfg=$2 seed=$3; shift 3
    local sub tree dir
    for sub in base new; do
        tree=train_base
        [ "$sub" = new ] && tree=test_new
        dir=${OUTPUT}/base2new/${tree}/${dataset}/ZeroshotCLIP/${cfg}/seed${seed}
        train_py \
            --root "${DATA}" \
            --seed "${seed}" \
            --trainer ZeroshotCLIP \
            --dataset-config-file "configs/datasets/${dataset}.yaml" \
            --config-file "configs/trainers/CoOp/${cfg}.yaml" \
            --output-dir "${dir}" \
            --eval-only \
            DATASET.SUBSAMPLE_CLASSES "${sub}" \
            "$@"
    done
}

# ----- IVLP family: PromptSRC (PromptKD's teacher), PromptKD, TextRefiner on PromptKD --------

# promptsrc_base2new_train TRAINER CFG DATASET SEED [opts]: labelled training on the base classes.
promptsrc_base2new_train() {
    local trainer=$1 cfg=$2 dataset=$3 seed=$4; shift 4
    local shots=${SHOTS:-16}
    local dir=${OUTPUT}/base2new/train_base/${dataset}/shots_${shots}/${trainer}/${cfg}/seed${seed}
    run_train "$trainer" "$cfg" "$dataset" "$seed" "$dir" \
        DATASET.NUM_SHOTS "${shots}" DATASET.SUBSAMPLE_CLASSES base "$@"
}

# promptsrc_base2new_test TRAINER CFG LOADEP DATASET SEED [opts]: the trained model on the new classes.
promptsrc_base2new_test() {
    local trainer=$1 cfg=$2 loadep=$3 dataset=$4 seed=$5; shift 5
    local shots=${SHOTS:-16} sub=new
    local common=${dataset}/shots_${shots}/${trainer}/${cfg}/seed${seed}
    local dir=${OUTPUT}/base2new/test_${sub}/${common}
    run_eval "$trainer" "$cfg" "$dataset" "$seed" "$dir" "${OUTPUT}/base2new/train_base/${common}" "$loadep" \
        "base2new_train.sh ${dataset} ${seed}" DATASET.NUM_SHOTS "${shots}" DATASET.SUBSAMPLE_CLASSES "${sub}" "$@"
}

kd_weight_for() {  # the reference's per-dataset KD weight (its scripts' comment); KD_WEIGHT overrides
    case "$1" in
        fgvc_aircraft|oxford_flowers|dtd) echo "${KD_WEIGHT:-200.0}" ;;
        *) echo "${KD_WEIGHT:-1000.0}" ;;
    esac
}

teacher_opts() {  # TEACHER=<checkpoint file> sets TRAINER.PROMPTKD.TEACHER_CKPT
    if [ -n "${TEACHER:-}" ]; then
        echo "TRAINER.PROMPTKD.TEACHER_CKPT ${TEACHER}"
    fi
}

# kd_base2new_dir TRAINER CFG DATASET SEED SHOTS: the training folder of a base-to-novel distillation.
kd_base2new_dir() {
    echo "${OUTPUT}/base2new/train_base/$3/shots_$5/$1/$2/seed_$4"
}

# kd_base2new_train TRAINER CFG SHOTS DATASET SEED [opts]: distil on all classes' train images;
# the best val epoch gives the base accuracy, the final test the novel one.
kd_base2new_train() {
    local trainer=$1 cfg=$2 shots=$3 dataset=$4 seed=$5; shift 5
    local dir
    dir=$(kd_base2new_dir "$trainer" "$cfg" "$dataset" "$seed" "$shots")
    # shellcheck disable=SC2046
    run_train "$trainer" "$cfg" "$dataset" "$seed" "$dir" \
        DATASET.NUM_SHOTS "${shots}" \
        TRAINER.MODAL base2novel \
        TRAINER.PROMPTKD.TEMPERATURE 1.0 \
        TRAINER.PROMPTKD.KD_WEIGHT "$(kd_weight_for "$dataset")" \
        $(teacher_opts) "$@"
}

# kd_base2new_test TRAINER CFG SHOTS LOADEP DATASET SEED [opts]: evaluate the trained student on the
# novel classes again (TEST.SPLIT val gives the base classes).
kd_base2new_test() {
    local trainer=$1 cfg=$2 shots=$3 loadep=$4 dataset=$5 seed=$6; shift 6
    local model_dir dir
    model_dir=$(kd_base2new_dir "$trainer" "$cfg" "$dataset" "$seed" "$shots")
    dir=${OUTPUT}/base2new/test_new/${dataset}/shots_${shots}/${trainer}/${cfg}/seed_${seed}
    # shellcheck disable=SC2046
    run_eval "$trainer" "$cfg" "$dataset" "$seed" "$dir" "$model_dir" "$loadep" "base2new_train.sh ${dataset} ${seed}" \
        DATASET.NUM_SHOTS "${shots}" TRAINER.MODAL base2novel $(teacher_opts) "$@"
}

# kd_xd_train TRAINER CFG DATASET SEED [opts]: distil on the target data set's train images (all
# classes, no labels) with the ImageNet teacher; val = test = the target's test split.
kd_xd_train() {
    local trainer=$1 cfg=$2 dataset=$3 seed=$4; shift 4
    local shots=${SHOTS:-0}
    local dir=${OUTPUT}/${dataset}/${trainer}/${cfg}_${shots}shots/seed${seed}
    # shellcheck disable=SC2046
    run_train "$trainer" "$cfg" "$dataset" "$seed" "$dir" \
        DATASET.NUM_SHOTS "${shots}" \
        DATASET.SUBSAMPLE_CLASSES all \
        TRAINER.PROMPTKD.TEMPERATURE 1.0 \
        TRAINER.PROMPTKD.KD_WEIGHT "${KD_WEIGHT:-1000.0}" \
        TRAINER.MODAL cross \
        $(teacher_opts) "$@"
}

# src_xd_train TRAINER CFG DATASET SEED [opts]: the multimodal-prompt-learning cross-dataset source run
# (DATASET is imagenet there), 16 shots of all classes.
src_xd_train() {
    local trainer=$1 cfg=$2 dataset=$3 seed=$4; shift 4
    local shots=${SHOTS:-16}
    local dir=${OUTPUT}/${dataset}/${trainer}/${cfg}_${shots}shots/seed${seed}
    run_train "$trainer" "$cfg" "$dataset" "$seed" "$dir" DATASET.NUM_SHOTS "${shots}" "$@"
}

# src_xd_test TRAINER CFG LOADEP DATASET SEED [opts]: the ImageNet model of src_xd_train on DATASET.
src_xd_test() {
    local trainer=$1 cfg=$2 loadep=$3 dataset=$4 seed=$5; shift 5
    local shots=${SHOTS:-16} source=${SOURCE:-imagenet}
    local dir=${OUTPUT}/evaluation/${trainer}/${cfg}_${shots}shots/${dataset}/seed${seed}
    run_eval "$trainer" "$cfg" "$dataset" "$seed" "$dir" "${OUTPUT}/${source}/${trainer}/${cfg}_${shots}shots/seed${seed}" \
        "$loadep" "xd_train.sh ${source} ${seed}" "$@"
}

# ----- TextRefiner on a host: HOST (default CoOp) picks the prompt learner it refines ----------
# A host is one line here: its output layout (coop: CoOp's folders, src: multimodal-prompt-learning's,
# kd: PromptKD's) and its default configs/trainers/TextRefiner/<CFG>.yaml for base2new and xd;
# plus its adapter in trainers/textrefiner/ (the trainer's TRAINER.TF.HOST).
tf_host() {  # tf_host HOST -> "LAYOUT BASE2NEW_CFG XD_CFG"
    case "$1" in
        CoOp) echo "coop vit_b16_ep10_ctxv1 vit_b16_ep10_ctxv1" ;;
        CoCoOp) echo "src cocoop_vit_b16_c4_ep10_batch1_ctxv1 cocoop_vit_b16_c4_ep10_batch1_ctxv1" ;;
        KgCoOp) echo "coop kgcoop_vit_b16_ep100_ctxv1 kgcoop_vit_b16_ep100_ctxv1" ;;
        PromptKD) echo "kd vit_b16_c2_ep20_batch8_4+4ctx vit_b16_c2_ep20_batch8_4+4ctx_cross_datasets" ;;
        IVLP) echo "src ivlp_vit_b16_c2_ep5_batch4_2+2ctx ivlp_vit_b16_c2_ep5_batch4_2+2ctx" ;;
        MaPLe) echo "src maple_vit_b16_c2_ep5_batch4_2ctx maple_vit_b16_c2_ep5_batch4_2ctx_cross_datasets" ;;
        PromptSRC) echo "src promptsrc_vit_b16_c2_ep20_batch4_4+4ctx promptsrc_vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets" ;;
        *)
            echo "Unknown HOST \"$1\": TextRefiner runs on CoOp, PromptKD, IVLP, MaPLe, PromptSRC, CoCoOp, KgCoOp (set HOST to one of them)" >&2
            return 2 ;;
    esac
}

# tf_run STEP [args]: TextRefiner's STEP (base2new_train, base2new_test, xd_train, xd_test) on $HOST.
tf_run() {
    local step=$1; shift
    local host=${HOST:-CoOp} spec layout b2n_cfg xd_cfg
    spec=$(tf_host "$host") || exit 2
    read -r layout b2n_cfg xd_cfg <<< "$spec"
    local host_opt=(TRAINER.TF.HOST "$host")
    case "${layout}:${step}" in
        coop:base2new_train) base2new_train TextRefiner "${CFG:-$b2n_cfg}" 4 "$@" "${host_opt[@]}" ;;
        coop:base2new_test) base2new_test TextRefiner "${CFG:-$b2n_cfg}" 4 "${LOADEP:-best}" "$@" "${host_opt[@]}" ;;
        coop:xd_train) xd_train TextRefiner "${CFG:-$xd_cfg}" "$@" "${host_opt[@]}" ;;
        coop:xd_test) xd_test TextRefiner "${CFG:-$xd_cfg}" "${LOADEP:-10}" "$@" "${host_opt[@]}" ;;
        src:base2new_train) promptsrc_base2new_train TextRefiner "${CFG:-$b2n_cfg}" "$@" "${host_opt[@]}" ;;
        src:base2new_test) promptsrc_base2new_test TextRefiner "${CFG:-$b2n_cfg}" "${LOADEP:-last}" "$@" "${host_opt[@]}" ;;
        src:xd_train) src_xd_train TextRefiner "${CFG:-$xd_cfg}" "${SOURCE:-imagenet}" "$@" "${host_opt[@]}" ;;
        src:xd_test) src_xd_test TextRefiner "${CFG:-$xd_cfg}" "${LOADEP:-last}" "$@" "${host_opt[@]}" ;;
        kd:base2new_train) kd_base2new_train TextRefiner "${CFG:-$b2n_cfg}" "${SHOTS:-16}" "$@" "${host_opt[@]}" ;;
        kd:base2new_test) kd_base2new_test TextRefiner "${CFG:-$b2n_cfg}" "${SHOTS:-16}" "${LOADEP:-best}" "$@" "${host_opt[@]}" ;;
        kd:xd_train) kd_xd_train TextRefiner "${CFG:-$xd_cfg}" "$@" "${host_opt[@]}" ;;
        *) echo "TextRefiner on ${host} has no ${step} step" >&2; exit 2 ;;
    esac
}
