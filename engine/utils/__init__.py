from .safe_pickle import TRUST_ENV, UntrustedPickleError, load_pickle
from .logger import setup_logger
from .meters import AverageMeter, MetricMeter
from .registry import Registry
from .tools import (
    check_availability,
    check_isfile,
    collect_env_info,
    distinct,
    listdir_nohidden,
    mkdir_if_missing,
    read_image,
    read_json,
    set_random_seed,
    tolist_if_not,
    write_json,
    write_json_atomic,
)
from .torchtools import (
    count_num_param,
    latest_checkpoint,
    load_checkpoint,
    load_pretrained_weights,
    resume_from_checkpoint,
    save_checkpoint,
)
