import os
import re

import pytest
from yacs.config import CfgNode

from engine.config import ConfigError, get_cfg_default
from engine.config.compat import config_dump, is_compat
from trainers.config import compat_keys, extend_cfg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg():
    return extend_cfg(get_cfg_default())


def test_defaults_dassl_and_extensions():
    cfg = _cfg()
    assert cfg.INPUT.SIZE == (224, 224) and cfg.OPTIM.NAME == "adam" and cfg.OPTIM.WEIGHT_DECAY == 5e-4
    assert cfg.DATALOADER.NUM_WORKERS == 4 and cfg.TEST.FINAL_MODEL == "last_step" and cfg.SEED == -1
    assert cfg.TRAINER.COOP.PREC == "fp16" and cfg.TRAINER.COOP.CLASS_TOKEN_POSITION == "end"
    tf = cfg.TRAINER.TF
    assert (tf.BALANCE, tf.DISTILL, tf.MEMORY_SIZE, tf.ALPHA, tf.MOMENTUM, tf.TOPK) == (50, 20, 25, 0.2, 0.8, 5)
    assert cfg.DATASET.SUBSAMPLE_CLASSES == "all"
    assert "FIXMATCH" in cfg.TRAINER and cfg.MODEL.BACKBONE.PATH == ""


def test_printed_config_is_sorted():
    text = str(_cfg())
    top = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert top == sorted(top)
    assert "  SIZE: (224, 224)" in text


def test_yaml_values_are_literal_evaluated(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text('INPUT:\n  SIZE: (32, 32)\n  TRANSFORMS: ["normalize"]\nOPTIM:\n  WARMUP_CONS_LR: 1e-5\n')
    cfg = _cfg()
    cfg.merge_from_file(str(f))
    assert cfg.INPUT.SIZE == (32, 32) and cfg.INPUT.TRANSFORMS == ("normalize",)
    assert cfg.OPTIM.WARMUP_CONS_LR == 1e-5
    cfg.merge_from_list(["TRAINER.COOP.CSC", "False", "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", "4"])
    assert cfg.TRAINER.COOP.CSC is False and cfg.DATASET.SUBSAMPLE_CLASSES == "base" and cfg.OPTIM.MAX_EPOCH == 4


def test_unknown_key_in_yaml_names_key_and_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("TRAINER:\n  COOP:\n    NCTX: 4\n")
    with pytest.raises(ConfigError) as err:
        _cfg().merge_from_file(str(f))
    msg = str(err.value)
    assert "TRAINER.COOP.NCTX" in msg and str(f) in msg and "TRAINER.COOP.N_CTX" in msg


def test_unknown_key_and_bad_type_in_opts():
    with pytest.raises(ConfigError, match=r'"OPTIM.LRR" in the command-line opts'):
        _cfg().merge_from_list(["OPTIM.LRR", "0.1"])
    with pytest.raises(ConfigError, match="Type mismatch"):
        _cfg().merge_from_list(["OPTIM.LR", "1"])
    with pytest.raises(ConfigError, match="odd number"):
        _cfg().merge_from_list(["OPTIM.LR"])


def test_missing_config_file():
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        _cfg().merge_from_file("nope.yaml")


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("OPTIM:\n  LR: 0.002\n  NAME: [sgd\nDATALOADER:\n  NUM_WORKERS: 2\n")
    with pytest.raises(ConfigError) as err:
        _cfg().merge_from_file(str(f))
    msg = str(err.value)
    assert f'"{f}"' in msg and "line 4" in msg and "<unicode string>" not in msg


def _leaf_keys(node, prefix=""):
    for k, v in node.items():
        if isinstance(v, CfgNode):
            yield from _leaf_keys(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def _code_outside_the_config_tree():
    """The project's source but the files that define config keys (and the tests)."""
    defining = {os.path.join("engine", "config", "defaults.py"), os.path.join("engine", "config", "compat.py"),
                os.path.join("trainers", "config.py"), os.path.join("trainers", "textrefiner", "config.py"),
                os.path.join("datasets", "config.py")}
    text = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in (".git", "tests", "bench") and not d.startswith(".")]
        for name in files:
            path = os.path.join(root, name)
            if name.endswith(".py") and os.path.relpath(path, REPO) not in defining:
                with open(path, encoding="utf-8") as f:
                    text.append(f.read())
    return "\n".join(text)


def test_every_key_is_read_or_listed_as_compatibility_key():
    code = _code_outside_the_config_tree()
    unread = [k for k in _leaf_keys(_cfg()) if not is_compat(k, compat_keys())
              and not re.search(rf"\b{re.escape(k.rsplit('.', 1)[-1])}\b", code)]
    assert unread == []


def test_compatibility_keys_are_in_the_tree_and_not_read_by_the_code_that_owns_them():
    cfg = _cfg()
    leaves = set(_leaf_keys(cfg))
    for key in compat_keys():
        assert key in leaves or any(k.startswith(key + ".") for k in leaves), key
    code = _code_outside_the_config_tree()
    for key in ("TRAINER.PROMPTKD.PROJECT_LAYER", "DATASET.VAL_PERCENT", "TRAIN.COUNT_ITER"):
        assert key.rsplit(".", 1)[-1] not in code


def test_config_dump_leaves_compatibility_keys_out_and_names_the_ones_set():
    defaults, cfg = _cfg(), _cfg()
    dump = config_dump(cfg, defaults, compat_keys())
    assert "FIXMATCH" not in dump and "NUM_LABELED" not in dump and "PROJECT_LAYER" not in dump
    assert "  TF:\n    ALPHA: 0.2" in dump and "N_CTX: 16" in dump  # TRAINER.COOP's, which is read
    assert dump.endswith(f"({sum(is_compat(k, compat_keys()) for k in _leaf_keys(cfg))} compatibility keys left "
                         "out: accepted so that Dassl's and the references' YAML files load, read by no code)")
    cfg.merge_from_list(["TRAINER.PROMPTKD.PROJECT_LAYER", 3, "TRAINER.TF.N_CTX", 4])
    assert config_dump(cfg, defaults, compat_keys()).endswith(
        "; set here, with no effect: TRAINER.PROMPTKD.PROJECT_LAYER=3, TRAINER.TF.N_CTX=4)")
