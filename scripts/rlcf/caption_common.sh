# Shared settings of the captioning scripts (sourced by scripts/rlcf/{train,tta,eval}_*caption*.sh and
# the ClipCap / CapDec ones), run from the repository root.
#
# Environment: DATA (data root, default ./data) holding the reference's layout:
#   coco2014/coco_karpathy_{train,test}.json with the images under coco2014/ (train2014/, val2014/)
#   flickr30k/annotations/flickr30k_test.json with the images under flickr30k/ (flickr30k-images/)
#   nocaps/nocaps_val_4500_captions.json (split by `python caption.py split_nocaps`) and nocaps/val/
# OUTPUT (default output), LLM (OPT, default facebook/opt-125m: hub name or folder), CLIP_ARCH (the
# captioner's CLIP, default ViT-B/16), REWARD_ARCH (default ViT-L/14), CLIPSCORE_ARCH (default
# ViT-B/32), CHECKPOINT (the mapper to adapt: default the train script's ckpt-latest.safetensors;
# a released ckpt-latest.pt of the reference works too), COCO_METRICS=0 (CLIPScores only).
# Arguments after the script's own ones are passed on to caption.py (later flags win).

DATA=${DATA:-./data}
OUTPUT=${OUTPUT:-output}
LLM=${LLM:-facebook/opt-125m}
CLIP_ARCH=${CLIP_ARCH:-ViT-B/16}
REWARD_ARCH=${REWARD_ARCH:-ViT-L/14}
CLIPSCORE_ARCH=${CLIPSCORE_ARCH:-ViT-B/32}
COCO_METRICS=${COCO_METRICS:-1}

coco_root=${DATA}/coco2014
flickr_root=${DATA}/flickr30k
nocaps_root=${DATA}/nocaps
metric_flags=()
if [ "${COCO_METRICS}" = "0" ]; then metric_flags=(--no_coco_metrics); fi

# train MODEL_NAME ARGS...: features of COCO Karpathy train (extracted once), then the mapper
train_mapper() {
    local name=$1; shift
    local features=${coco_root}/coco_train_features_${CLIP_ARCH//\//-}.safetensors
    if [ ! -f "${features}" ]; then
        python caption.py extract --annotations "${coco_root}/coco_karpathy_train.json" --images_root "${coco_root}" \
            --clip_model_type "${CLIP_ARCH}" --out "${features}"
    fi
    python caption.py train --data "${features}" --out_dir "${OUTPUT}/${name}" --llm_config_dir "${LLM}" \
        --clip_model_type "${CLIP_ARCH}" --lr 2e-5 --bs 40 --epochs 10 --warmup_steps 5000 "$@"
}

# adapt MODEL_NAME RUN_NAME ANNOTATIONS IMAGES_ROOT ARGS...: caption.py tta on one test file
adapt() {
    local name=$1 run=$2 annotations=$3 images=$4; shift 4
    python caption.py tta --checkpoint "${CHECKPOINT:-${OUTPUT}/${name}/ckpt-latest.safetensors}" \
        --annotations "${annotations}" --images_root "${images}" --llm_config_dir "${LLM}" \
        --clip_model_type "${CLIP_ARCH}" --reward_arch "${REWARD_ARCH}" --clipscore_arch "${CLIPSCORE_ARCH}" \
        --output "${OUTPUT}/${name}/${run}" "${metric_flags[@]}" "$@"
}

# the three NoCaps val domain files (written from nocaps_val_4500_captions.json when missing)
nocaps_files() {
    if ! ls "${nocaps_root}"/nocaps_val_*_in-domain.json >/dev/null 2>&1; then
        python caption.py split_nocaps "${nocaps_root}/nocaps_val_4500_captions.json" >&2
    fi
    for domain in in-domain near-domain out-domain; do
        ls "${nocaps_root}"/nocaps_val_*_${domain}.json | grep -v clipscore
    done
}
