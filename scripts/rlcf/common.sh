# Shared settings of the test-time adaptation scripts (sourced by scripts/rlcf/*.sh), run from the
# repository root like the other scripts.
#
# Environment: DATA (data root, default ./data), OUTPUT (output root, default output),
# ARCH (student CLIP, default ViT-B/16), REWARD_ARCH (reward CLIP, default ViT-L/14),
# COOP_WEIGHT (a CoOp checkpoint file or train.py output folder: the "+ CoOp" rows; default
# None = the prompt "a photo of a"). CLIP names may also be weights files.
# Arguments after the script's own ones are passed on to tta.py (later flags win).
# NPROC=N: N processes through torchrun, each adapting to its share of the images.

source "$(dirname "${BASH_SOURCE[0]}")/../launch.sh"

DATA=${DATA:-./data}
OUTPUT=${OUTPUT:-output}
ARCH=${ARCH:-ViT-B/16}
REWARD_ARCH=${REWARD_ARCH:-ViT-L/14}
COOP_WEIGHT=${COOP_WEIGHT:-None}

# the reference's views, selection and reward settings
batch_size=64
selection_p=0.1
ctx_init=a_photo_of_a
reward_amplify=0
reward_process=1
process_batch=0
sample_k=3
