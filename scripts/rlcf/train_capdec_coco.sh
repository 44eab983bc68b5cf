#!/bin/bash
# CapDec on COCO Karpathy train (the reference's train_capdec_coco.sh): the mapper on CLIP ViT-B/16
# text embeddings + Gaussian noise (variance 0.016), OPT-125m frozen; 10 epochs, lr 2e-5, batch 40.
# usage: bash scripts/rlcf/train_capdec_coco.sh [caption.py train args ...]
set -e
source "$(dirname "$0")/caption_common.sh"
train_mapper capdec_opt125m_transformer_coco_01 --cap_model CapDec --noise_variance 0.016 "$@"
