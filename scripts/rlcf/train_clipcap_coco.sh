#!/bin/bash
# ClipCap on COCO Karpathy train (the reference's train_clipcap_coco.sh): the mapper on CLIP ViT-B/16
# image embeddings, OPT-125m frozen; 10 epochs, lr 2e-5, batch 40.
# usage: bash scripts/rlcf/train_clipcap_coco.sh [caption.py train args ...]
set -e
source "$(dirname "$0")/caption_common.sh"
train_mapper clipcap_opt125m_transformer_coco_01 --cap_model CLIPCap --use_image_embedding "$@"
