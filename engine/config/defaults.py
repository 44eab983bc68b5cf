"""The default configuration tree: every key CoOp-family configs and trainers read.

Keys and defaults follow Dassl's tree, so that its and the references' YAML files load; the keys
that no code here reads are listed once in compat.py. Keys added by this project are marked "(ours)".
"""


def _dassl_trainer_nodes():
    # Dassl's own DA/DG/SSL methods: compatibility keys (engine/config/compat.py), read by no code
    return {
        "MCD": {"N_STEP_F": 4},
        "MME": {"LMDA": 0.1},
        "CDAC": {
            "CLASS_LR_MULTI": 10, "RAMPUP_COEF": 30, "RAMPUP_ITRS": 1000,
            "TOPK_MATCH": 5, "P_THRESH": 0.95, "STRONG_TRANSFORMS": (),
        },
        "SE": {"EMA_ALPHA": 0.999, "CONF_THRE": 0.95, "RAMPUP": 300},
        "M3SDA": {"LMDA": 0.5, "N_STEP_F": 4},
        "DAEL": {"WEIGHT_U": 0.5, "CONF_THRE": 0.95, "STRONG_TRANSFORMS": ()},
        "CROSSGRAD": {"EPS_F": 1.0, "EPS_D": 1.0, "ALPHA_F": 0.5, "ALPHA_D": 0.5},
        "DDAIG": {
            "G_ARCH": "", "LMDA": 0.3, "CLAMP": False, "CLAMP_MIN": -1.0,
            "CLAMP_MAX": 1.0, "WARMUP": 0, "ALPHA": 0.5,
        },
        "DAELDG": {"WEIGHT_U": 0.5, "CONF_THRE": 0.95, "STRONG_TRANSFORMS": ()},
        "DOMAINMIX": {"TYPE": "crossdomain", "ALPHA": 1.0, "BETA": 1.0},
        "ENTMIN": {"LMDA": 1e-3},
        "MEANTEACHER": {"WEIGHT_U": 1.0, "EMA_ALPHA": 0.999, "RAMPUP": 5},
        "MIXMATCH": {"WEIGHT_U": 100.0, "TEMP": 2.0, "MIXUP_BETA": 0.75, "RAMPUP": 20000},
        "FIXMATCH": {"WEIGHT_U": 1.0, "CONF_THRE": 0.95, "STRONG_TRANSFORMS": ()},
    }


DASSL_TRAINER_METHODS = tuple(_dassl_trainer_nodes())


def default_tree():
    """The defaults as nested dicts (turned into a CfgNode by ``get_cfg_default``)."""
    loader = {"SAMPLER": "RandomSampler", "BATCH_SIZE": 32, "N_DOMAIN": 0, "N_INS": 16}
    return {
        "VERSION": 1,
        "OUTPUT_DIR": "./output",
        "RESUME": "",
        "SEED": -1,  # negative: no seeding
        "USE_CUDA": True,
        "VERBOSE": True,
        "INPUT": {
            "SIZE": (224, 224),
            "INTERPOLATION": "bilinear",
            "TRANSFORMS": (),
            "NO_TRANSFORM": False,
            "PIXEL_MEAN": [0.485, 0.456, 0.406],
            "PIXEL_STD": [0.229, 0.224, 0.225],
            "CROP_PADDING": 4,
            "RRCROP_SCALE": (0.08, 1.0),
            "CUTOUT_N": 1,
            "CUTOUT_LEN": 16,
            "GN_MEAN": 0.0,
            "GN_STD": 0.15,
            "RANDAUGMENT_N": 2,
            "RANDAUGMENT_M": 10,
            "COLORJITTER_B": 0.4,
            "COLORJITTER_C": 0.4,
            "COLORJITTER_S": 0.4,
            "COLORJITTER_H": 0.1,
            "RGS_P": 0.2,
            "GB_P": 0.5,
            "GB_K": 21,
        },
        "DATASET": {
            "ROOT": "",
            "NAME": "",
            "SOURCE_DOMAINS": (),
            "TARGET_DOMAINS": (),
            "NUM_LABELED": -1,
            "NUM_SHOTS": -1,
            "VAL_PERCENT": 0.1,
            "STL10_FOLD": -1,
            "CIFAR_C_TYPE": "",
            "CIFAR_C_LEVEL": 1,
            "ALL_AS_UNLABELED": False,
        },
        "DATALOADER": {
            "NUM_WORKERS": 4,
            "K_TRANSFORMS": 1,
            "RETURN_IMG0": False,
            "TRAIN_X": dict(loader),
            "TRAIN_U": {"SAME_AS_X": True, **loader},
            "TEST": {"SAMPLER": "SequentialSampler", "BATCH_SIZE": 32},
        },
        "MODEL": {
            "INIT_WEIGHTS": "",
            "BACKBONE": {
                "NAME": "",
                "PRETRAINED": True,
                "PATH": "",  # (ours) a local CLIP weights file, used instead of the download cache
                "COMPILE": False,  # (ours) run the CLIP image encoder under torch.compile (not bit-exact)
            },
            "HEAD": {"NAME": "", "HIDDEN_LAYERS": (), "ACTIVATION": "relu", "BN": True, "DROPOUT": 0.0},
        },
        "OPTIM": {
            "NAME": "adam",
            "LR": 0.0003,
            "WEIGHT_DECAY": 5e-4,
            "MOMENTUM": 0.9,
            "SGD_DAMPNING": 0,
            "SGD_NESTEROV": False,
            "RMSPROP_ALPHA": 0.99,
            "ADAM_BETA1": 0.9,
            "ADAM_BETA2": 0.999,
            "STAGED_LR": False,
            "NEW_LAYERS": (),
            "BASE_LR_MULT": 0.1,
            "LR_SCHEDULER": "single_step",
            "STEPSIZE": (-1,),
            "GAMMA": 0.1,
            "MAX_EPOCH": 10,
            "WARMUP_EPOCH": -1,
            "WARMUP_TYPE": "linear",
            "WARMUP_CONS_LR": 1e-5,
            "WARMUP_MIN_LR": 1e-5,
            "WARMUP_RECOUNT": True,
        },
        # GRAD_ACCUM: each batch runs as that many micro-batches whose gradients add up (less memory, same update)
        # CHECKPOINT_ITER_FREQ: also a resumable checkpoint every that many batches inside an epoch (0: none)
        # ALLOW_CHANGED: config keys (comma-separated, as a refused rerun names them) with which a rerun
        # may continue the run already in OUTPUT_DIR (e.g. "OPTIM.MAX_EPOCH" to train longer on purpose)
        "TRAIN": {
            "CHECKPOINT_FREQ": 0, "CHECKPOINT_ITER_FREQ": 0, "PRINT_FREQ": 10, "COUNT_ITER": "train_x", "GRAD_ACCUM": 1,
            "ALLOW_CHANGED": "",
        },
        "TEST": {
            "EVALUATOR": "Classification",
            "PER_CLASS_RESULT": False,
            "COMPUTE_CMAT": False,
            "NO_TEST": False,
            "SPLIT": "test",
            "FINAL_MODEL": "last_step",
            # (ours) --eval-only without --model-dir of a trainer with learned parameters: refused unless
            # True; the result is then marked untrained (results.json, log) and parse_test_res keeps it apart
            "ALLOW_UNTRAINED": False,
            # (ours) trainers with a frozen, unprompted image tower read the test images' features from
            # a cache on disk (computed once; results unchanged, docs/ENGINE_CACHE.md); False computes them
            "FEATURE_CACHE": True,
            "FEATURE_CACHE_DIR": "",  # (ours) the cache's folder; "": $TEXTREFINER_FEATURE_CACHE or ~/.cache/textrefiner/features
        },
        "TRAINER": {"NAME": "", **_dassl_trainer_nodes()},
    }
