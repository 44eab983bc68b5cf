import pytest

from engine.config import ConfigError, get_cfg_default
from trainers.config import extend_cfg


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
