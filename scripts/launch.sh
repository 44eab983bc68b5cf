# launch SCRIPT [args]: `python SCRIPT args`, or torchrun with NPROC processes on this machine
# (sourced by scripts/runs.sh and scripts/rlcf/common.sh).
launch() {
    if [ "${NPROC:-1}" -gt 1 ]; then
        python -m torch.distributed.run --standalone --nproc_per_node "${NPROC}" "$@"
    else
        python "$@"
    fi
}
