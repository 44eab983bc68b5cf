"""yacs configuration with Dassl's defaults and errors that name the bad key and its file."""
import difflib

import yaml
from yacs.config import CfgNode as _YacsNode

from .defaults import default_tree


class ConfigError(ValueError):
    """A config file or command-line option names an unknown key or gives a wrong type."""


def _all_keys(node, prefix=""):
    for k, v in node.items():
        full = f"{prefix}{k}"
        yield full
        if isinstance(v, _YacsNode):
            yield from _all_keys(v, full + ".")


def _unknown_key(message):
    # yacs words: "Non-existent config key: A.B" (file) / "Non-existent key: A.B" (list)
    return message.split(":", 1)[1].strip().strip("'\"") if "Non-existent" in message else None


class CfgNode(_YacsNode):
    """A yacs CfgNode whose merge errors say which key, in which file, and suggest a fix."""

    def _explain(self, err, source):
        key = _unknown_key(str(err.args[0]) if err.args else str(err))
        if key is not None:
            close = difflib.get_close_matches(key, list(_all_keys(self)), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            return ConfigError(
                f'Unknown config key "{key}" in {source}.{hint} '
                "Valid keys are those of engine/config/defaults.py plus the keys added by trainers/config.py (and the owners it calls)."
            )
        return ConfigError(f"Bad config value in {source}: {err}")

    def merge_from_file(self, cfg_filename):
        try:
            super().merge_from_file(cfg_filename)
        except FileNotFoundError:
            raise FileNotFoundError(f'Config file not found: "{cfg_filename}"') from None
        except yaml.YAMLError as e:
            raise ConfigError(_yaml_syntax_message(e, cfg_filename)) from None
        except (KeyError, ValueError, AssertionError) as e:
            raise self._explain(e, f'config file "{cfg_filename}"') from None

    def merge_from_list(self, cfg_list):
        if len(cfg_list) % 2 != 0:
            raise ConfigError(
                f"Command-line opts must be KEY VALUE pairs, got an odd number of items: {list(cfg_list)}"
            )
        try:
            super().merge_from_list(cfg_list)
        except (KeyError, ValueError, AssertionError) as e:
            raise self._explain(e, "the command-line opts") from None


def _yaml_syntax_message(err, filename):
    """The parser's complaint with the file's name instead of yacs's "<unicode string>"."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f'YAML syntax error in config file "{filename}"{where}: {problem}. Fix the file and run again.'


def _to_node(tree):
    return CfgNode({k: _to_node(v) if isinstance(v, dict) else v for k, v in tree.items()})


def get_cfg_default():
    """A fresh copy of the default configuration tree."""
    return _to_node(default_tree())


__all__ = ["CfgNode", "ConfigError", "get_cfg_default"]
