# Shared part of the retrieval scripts (sourced by scripts/rlcf/tta_*_ret.sh and tta_*_ret_kd.sh): run from the
# repository root. Environment, besides common.sh's DATA, OUTPUT, ARCH, REWARD_ARCH and NPROC:
# REWARD_ARCHS (the multi-reward CLIPs, default the reference's ViT-L/14@336px RN50x64 ViT-L/14),
# VARIANTS (which of 01 02 03 to run, default all three), DATASET (the set: coco, flickr30k, world).
# Arguments after the script's own ones go to every tta_ret.py call (later flags win).

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REWARD_ARCHS=${REWARD_ARCHS:-"ViT-L/14@336px RN50x64 ViT-L/14"}
VARIANTS=${VARIANTS:-"01 02 03"}

# one variant, both directions (text2image first, as the reference):
# ret_variant NAME SAMPLE_K_I2T SAMPLE_K_T2I UPDATE_FREQ [tta_ret.py args ...]
ret_variant() {
    local num=$1 k_i2t=$2 k_t2i=$3 update_freq=$4
    shift 4
    local multiple=0 momentum=0 nproc=${NPROC:-1}
    case ${num} in
        01 ) ;;
        02 ) multiple=1 ;;
        03 ) multiple=1; momentum=1; nproc=1 ;;  # the momentum buffer follows the query order: one process
        * ) echo "unknown variant ${num} (01 02 03)" >&2; return 2 ;;
    esac
    local task k
    for task in text2image image2text; do
        k=${k_t2i}; [ "${task}" = image2text ] && k=${k_i2t}
        # shellcheck disable=SC2086  # REWARD_ARCHS is a list
        NPROC=${nproc} launch tta_ret.py \
            --dataset "${DATASET}" --root "${DATA}" \
            -a "${ARCH}" \
            --tta_steps 8 --lr 1e-6 --weight_decay 5e-4 \
            --momentum_update ${momentum} --update_freq ${update_freq} --tta_momentum 0.9998 --update_w 1.0 \
            --reward_arch "${REWARD_ARCH}" --reward_archs ${REWARD_ARCHS} \
            --reward_amplify 0 --reward_process 1 --process_batch 0 \
            --sample_k ${k} \
            --multiple_reward_models ${multiple} \
            --retrieval_task ${task} \
            --output "${OUTPUT}/tta_clip_${DATASET}_ret_${num}/${task}" \
            "$@"
    done
}

# distillation from the reward CLIP (the reference's clip_ret_kd.py, tta_*_ret_kd.sh: variant 01,
# 3 steps, lr 1e-6, ${REWARD_ARCH} as the teacher), both directions, text2image first:
# ret_kd SAMPLE_K_I2T SAMPLE_K_T2I [tta_ret.py args ...]   (the reference's scripts pass a K;
# distillation reads the whole gallery, so it changes nothing)
ret_kd() {
    local k_i2t=$1 k_t2i=$2
    shift 2
    local task k
    for task in text2image image2text; do
        k=${k_t2i}; [ "${task}" = image2text ] && k=${k_i2t}
        NPROC=${NPROC:-1} launch tta_ret.py --method kd \
            --dataset "${DATASET}" --root "${DATA}" \
            -a "${ARCH}" \
            --tta_steps 3 --lr 1e-6 --weight_decay 5e-4 \
            --momentum_update 0 --update_freq 64 --tta_momentum 0.9998 --update_w 1.0 \
            --reward_arch "${REWARD_ARCH}" \
            --reward_amplify 0 --reward_process 1 --process_batch 0 \
            --sample_k ${k} \
            --multiple_reward_models 0 \
            --retrieval_task ${task} \
            --output "${OUTPUT}/tta_clip_${DATASET}_ret_kd_01/${task}" \
            "$@"
    done
}
