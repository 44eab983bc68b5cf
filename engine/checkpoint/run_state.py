"""The run's fields of a checkpoint: what a resumed run needs besides the models (docs/ENGINE.md,
"Resume guarantees"): RNG states, the loss scaler, skipped updates, the trainer that wrote it,
the best val result and the evaluation history. Every model's file of one save holds the same.
"""
from .. import distributed
from .rng import capture_rng_state, offset_for_rank, restore_rng_state


def capture(scaler, skipped_updates):
    """RNG states, the GradScaler's state (None without one) and the updates it skipped.

    Under torchrun every rank's RNG states are gathered (``rank_rng_states``; collective: all
    ranks call this), so a resumed multi-process run continues each rank's draws.
    """
    state = {
        "rng_state": capture_rng_state(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "skipped_updates": skipped_updates,
    }
    if distributed.is_distributed():
        state["rank_rng_states"] = distributed.all_gather_objects(state["rng_state"])
    return state


def restore(checkpoint, scaler):
    """Restore the RNG states and the GradScaler of ``checkpoint``.

    Returns (resume_in_epoch, skipped_updates): resume_in_epoch is (batches done, epoch-start
    RNG states, the checkpoint moment's RNG states) of a mid-epoch checkpoint, else None.
    """
    state = own_rng_state(checkpoint, "rng_state", "rank_rng_states")
    if state is None:
        print("Note: the checkpoint holds no RNG state (an older file): the resumed draws differ from an uninterrupted run")
    else:
        restore_rng_state(state)
        saved, ranks = len(checkpoint.get("rank_rng_states") or [None]), distributed.world_size()
        if saved != ranks:  # another number of processes: rank 0's states, reseeded per rank
            print(f"Note: the checkpoint was written by {saved} process(es), this run has {ranks}: augmentation draws differ from an uninterrupted run")
            offset_for_rank(distributed.rank())
    resume_in_epoch = None
    if checkpoint.get("batch", 0) > 0:  # a mid-epoch checkpoint: run_epoch replays the epoch's data up to it
        resume_in_epoch = (checkpoint["batch"], own_rng_state(checkpoint, "epoch_rng_state", "rank_epoch_rng_states"), state)
    if scaler is not None and checkpoint.get("scaler") is not None:
        scaler.load_state_dict(checkpoint["scaler"])
    return resume_in_epoch, checkpoint.get("skipped_updates", 0)


def mid_epoch_fields(done, epoch_rng_state):
    """The fields of a checkpoint after ``done`` batches of an epoch that started from ``epoch_rng_state``
    (collective under torchrun: every rank's epoch-start states are gathered)."""
    fields = {"batch": done, "epoch_rng_state": epoch_rng_state}
    if distributed.is_distributed():
        fields["rank_epoch_rng_states"] = distributed.all_gather_objects(epoch_rng_state)
    return fields


def history(trainer_name, best_result, run_record):
    """The trainer's name, the best val result and the evaluation history (engine.results.RunRecord)."""
    return {"trainer": trainer_name, "best_result": float(best_result), "run_record": run_record.state_dict()}


def restore_history(checkpoint, best_result, run_record):
    """Load the saved evaluation history into ``run_record``; return the best val result (``best_result`` when none is saved)."""
    if checkpoint.get("run_record") is not None:
        run_record.load_state_dict(checkpoint["run_record"])
    return checkpoint["best_result"] if checkpoint.get("best_result") is not None else best_result


def check_written_by(checkpoint, name, trainer_name):
    """Refuse another trainer's checkpoint by name before its keys are compared."""
    written_by = checkpoint.get("trainer")
    if written_by is not None and written_by != trainer_name:
        raise ValueError(
            f'The checkpoint for "{name}" was written by the trainer {written_by}, this run is '
            f"{trainer_name}. Use another --output-dir (resume) or point --model-dir at a "
            f"{trainer_name} run (evaluation)."
        )


def own_rng_state(checkpoint, key, per_rank_key):
    """This rank's RNG state in a checkpoint: its own when the same number of processes wrote it, else rank 0's."""
    per_rank = checkpoint.get(per_rank_key)
    if per_rank is not None and len(per_rank) == distributed.world_size():
        return per_rank[distributed.rank()]
    return checkpoint.get(key)
