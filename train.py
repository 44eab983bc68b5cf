"""Train or evaluate a CoOp-family trainer: the reference train.py's flags, config and life cycle."""
import argparse
import sys

import torch

from engine import build_trainer, distributed
from engine.config import ConfigError, get_cfg_default
from engine.config.compat import config_dump
from engine.rerun import RerunGuard
from engine.trainer import trainer_class
from engine.utils import collect_env_info, set_random_seed, setup_logger
from engine.utils.faults import USER_ERROR_TYPES, UserError, check_output_dir, error_message, run_command
from engine.utils.logger import log_only, restore_stdout

import datasets  # noqa: F401  (registers the data sets)
import trainers  # noqa: F401  (registers the trainers)
from trainers.config import compat_keys, extend_cfg

# TextRefiner's flags and the TRAINER.TF keys they set
TF_FLAGS = {"loss_factor": "BALANCE", "distill_factor": "DISTILL", "memory_size": "MEMORY_SIZE", "alpha": "ALPHA"}


def build_parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=str, default="", help="path to dataset")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="", help="checkpoint directory (from which the training resumes)")
    parser.add_argument("--seed", type=int, default=None, help="a fixed seed (0 included); negative: unseeded")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="path to config file")
    parser.add_argument("--dataset-config-file", type=str, default="", help="path to config file for dataset setup")
    parser.add_argument("--trainer", type=str, default="", help="name of trainer")
    parser.add_argument("--backbone", type=str, default="", help="name of CNN backbone")
    parser.add_argument("--head", type=str, default="", help="name of head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="", help="load model from this directory for eval-only mode")
    parser.add_argument("--load-epoch", type=int, help="load model weights at this epoch for evaluation")
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    # TextRefiner (reference defaults 50 / 20 / 25 / 0.2 live in TRAINER.TF; a flag overrides the YAML)
    parser.add_argument("--loss-factor", type=float, default=None, help="TRAINER.TF.BALANCE (default 50)")
    parser.add_argument("--distill-factor", type=float, default=None, help="TRAINER.TF.DISTILL (default 20)")
    parser.add_argument("--memory-size", type=int, default=None, help="TRAINER.TF.MEMORY_SIZE (default 25)")
    parser.add_argument("--alpha", type=float, default=None, help="TRAINER.TF.ALPHA (default 0.2)")
    # TaskRes: a text projection file for the enhanced base (TRAINER.TaskRes.ENHANCED_BASE)
    parser.add_argument("--enhanced-base", type=str, default=None, help='enhanced base weights for TaskRes ("none": regular base)')
    parser.add_argument(
        "opts", default=None, nargs=argparse.REMAINDER, help="modify config options using the command-line"
    )
    return parser


def reset_cfg(cfg, args):
    """Copy the truthy CLI arguments into the config (the reference's rule), and --seed when given:
    0 is a seed (the reference's truthiness test ignored it)."""
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.resume:
        cfg.RESUME = args.resume
    if args.seed is not None:
        cfg.SEED = args.seed
    if args.source_domains:
        cfg.DATASET.SOURCE_DOMAINS = args.source_domains
    if args.target_domains:
        cfg.DATASET.TARGET_DOMAINS = args.target_domains
    if args.transforms:
        cfg.INPUT.TRANSFORMS = args.transforms
    if args.trainer:
        cfg.TRAINER.NAME = args.trainer
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.head:
        cfg.MODEL.HEAD.NAME = args.head
    if args.enhanced_base is not None:
        cfg.TRAINER.TaskRes.ENHANCED_BASE = args.enhanced_base
    for flag, key in TF_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            cfg.TRAINER.TF[key] = type(cfg.TRAINER.TF[key])(value)


def setup_cfg(args):
    """Defaults + trainer keys, then dataset YAML, trainer YAML, CLI flags and opts; frozen."""
    cfg = get_cfg_default()
    extend_cfg(cfg)
    if args.dataset_config_file:
        cfg.merge_from_file(args.dataset_config_file)
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    reset_cfg(cfg, args)
    opts = list(args.opts or [])
    flags = [o for o in opts if o.startswith("--")]
    if flags:
        raise ConfigError(
            f"Flags {flags} come after the config opts; put every --flag before the trailing KEY VALUE opts."
        )
    cfg.merge_from_list(opts)
    cfg.freeze()
    return cfg


def print_args(args, cfg):
    """The reference's argument and config dump, into log.txt (the console keeps what a user reads)."""
    lines = ["***************", "** Arguments **", "***************"]
    lines += [f"{key}: {args.__dict__[key]}" for key in sorted(args.__dict__)]
    dump = config_dump(cfg, extend_cfg(get_cfg_default()), compat_keys())
    lines += ["************", "** Config **", "************", dump]
    log_only("\n".join(lines) + "\n")


def main(args):
    cfg = setup_cfg(args)
    with distributed.process_group(cfg.USE_CUDA) as ranks:
        return run(args, cfg, ranks)


def run(args, cfg, ranks):
    """One run in this process (one of ``ranks`` under torchrun)."""
    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    cls = trainer_class(cfg)
    untrained = args.eval_only and not args.model_dir and check_untrained(cls, cfg)
    guard = RerunGuard(cfg, args.eval_only, args.model_dir, args.load_epoch, cls.weights_files(cfg) if cls else {})
    if guard.check():
        print(f"Oops! The results exist at {cfg.OUTPUT_DIR} (so skip this job)")
        return None
    log_path = None
    if distributed.is_main_process():
        check_output_dir(cfg.OUTPUT_DIR)
        log_path = setup_logger(cfg.OUTPUT_DIR)
    if ranks > 1:
        print(f"torchrun: {ranks} processes (rank 0 writes the log, checkpoints and results)")
    trainer = None
    try:
        if torch.cuda.is_available() and cfg.USE_CUDA:
            torch.backends.cudnn.benchmark = True
        if log_path is not None:
            print(f"Arguments, config and system info: {log_path}")
        print_args(args, cfg)
        log_only(f"Collecting env info ...\n** System info **\n{collect_env_info()}\n\n")

        trainer = build_trainer(cfg)
        if untrained:
            print(f"Note: evaluating {cfg.TRAINER.NAME}'s untrained parameters (no --model-dir; TEST.ALLOW_UNTRAINED): "
                  "this is not a trained result")
        guard.start(trainer)
        if args.eval_only:
            trainer.load_model(args.model_dir, epoch=args.load_epoch)
            trainer.test()
            write_results(trainer, cfg, epochs_trained=0, eval_only=True, untrained=untrained)
        else:
            if not args.no_train:
                trainer.train()
            write_results(trainer, cfg, epochs_trained=0 if args.no_train else trainer.max_epoch, eval_only=False)
        if not args.no_train:  # a --no-train run built the trainer only: a rerun builds it again
            guard.finish()
        return trainer
    except USER_ERROR_TYPES as e:
        log_only(f"Error: {error_message(e)}\n")  # the log says why the run stopped
        raise
    finally:
        restore_stdout()
        if trainer is not None:
            trainer.leave_process_group()  # DistributedDataParallel holds the process group


def check_untrained(cls, cfg):
    """--eval-only without --model-dir: refused for a trainer that learns parameters unless
    TEST.ALLOW_UNTRAINED; returns whether the evaluated parameters are untrained."""
    if cls is None or not cls.learns:
        return False
    name = cfg.TRAINER.NAME
    if not cfg.TEST.ALLOW_UNTRAINED:
        raise UserError(
            f"--eval-only without --model-dir would evaluate {name}'s untrained parameters: pass --model-dir <the "
            f"output folder of a {name} training run> (and --load-epoch N for model.pth.tar-N). To evaluate the "
            "initial parameters on purpose, add TEST.ALLOW_UNTRAINED True: the result is then marked untrained "
            '("untrained": true in results.json) and parse_test_res.py keeps it apart.'
        )
    return True


def write_results(trainer, cfg, epochs_trained, eval_only, untrained=False):
    if distributed.is_main_process():
        trainer.run_record.write(cfg, epochs_trained=epochs_trained, eval_only=eval_only,
                                 skipped_updates=trainer.skipped_updates, untrained=untrained)


if __name__ == "__main__":
    # a user error: its message alone (TEXTREFINER_DEBUG=1 for the traceback); Ctrl-C: 130, the
    # trainer has said where it stopped and the same command resumes
    sys.exit(run_command(lambda argv: main(build_parser().parse_args(argv))))
