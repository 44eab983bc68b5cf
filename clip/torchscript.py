"""The weights of a TorchScript archive (OpenAI's CLIP releases) read as data, without torch.jit.

Deserialising TorchScript compiles the archive's code, so the archive is read as files instead:
``<name>/data.pkl`` pickles the module tree (objects of classes ``__torch__.<path>``, each
holding a dict of its attributes), ``<name>/data/<key>`` holds the bytes of each tensor, and
``<name>/code/__torch__/<path>.py`` declares each class's ``__parameters__`` and ``__buffers__``
(read as text). The pickle goes through the allow-listed unpickler with ``__torch__`` classes
as inert records, so the state dict is named as ``torch.jit.load(path).state_dict()`` names it:
parameters and buffers only, module by module.
"""
import ast
import re
import zipfile
from collections import OrderedDict

import torch

from engine.utils.safe_pickle import PickledObject, SafeUnpickler, record_class

# the legacy storage class names torch writes into a pickle, and the dtype of their elements
_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class TorchScriptFormatError(ValueError):
    """The archive is not laid out as a TorchScript module archive."""


def _tensor_from_record(flat, storage_offset, size, stride, *unused):
    """``torch._utils._rebuild_tensor(_v2)`` on a record's flat tensor (requires_grad and hooks unused)."""
    return flat.as_strided(size, stride, storage_offset)


class _ArchiveUnpickler(SafeUnpickler):
    """data.pkl of a TorchScript archive: tensors from the data/ records, modules as records."""

    def __init__(self, file, path, archive, prefix):
        super().__init__(file, path, self._resolve_name)
        self._archive, self._prefix = archive, prefix
        self._classes = {}  # qualified class name -> its record class
        self._records = {}  # record key -> flat tensor (views of one record share it, as in torch)

    def _resolve_name(self, module, name):
        if module == "__torch__" or module.startswith("__torch__."):
            qualified = f"{module}.{name}"
            return self._classes.setdefault(qualified, record_class(qualified))
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _tensor_from_record
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict  # the (empty) backward hooks of each tensor
        return None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise TorchScriptFormatError(f"a tensor reference {pid!r} is not (storage, type, key, device, numel)")
        _, dtype, key, _, numel = pid
        if key not in self._records:
            try:
                data = self._archive.read(f"{self._prefix}/data/{key}")
            except KeyError:
                raise TorchScriptFormatError(f"the tensor record data/{key} is missing") from None
            if len(data) != numel * dtype.itemsize:
                raise TorchScriptFormatError(f"the record data/{key} holds {len(data)} bytes, not {numel} x {dtype}")
            self._records[key] = torch.frombuffer(bytearray(data), dtype=dtype) if numel else torch.empty(0, dtype=dtype)
        return self._records[key]


def _declared_names(archive, prefix, qualified):
    """(parameters, buffers) that the archive's code declares for the class ``qualified``."""
    module, _, name = qualified.rpartition(".")
    code_file = f"{prefix}/code/{module.replace('.', '/')}.py"
    try:
        source = archive.read(code_file).decode("utf-8")
    except KeyError:
        raise TorchScriptFormatError(f"{code_file} (the code of {qualified}) is missing") from None
    block = re.search(rf"^class {re.escape(name)}\(.*\):\n((?:[ \t].*\n?|\n)*)", source, re.M)
    lists = []
    for field in ("__parameters__", "__buffers__"):
        found = block and re.search(rf"^[ \t]+{field} = (\[.*\])[ \t]*$", block.group(1), re.M)
        if not found:
            raise TorchScriptFormatError(f"{code_file} declares no {field} for class {name}")
        lists.append(ast.literal_eval(found.group(1)))
    return lists


def _collect(module, archive, prefix, out, key_prefix="", seen=()):
    """Parameters then buffers of ``module``, then its submodules in attribute order (nn.Module.state_dict)."""
    if id(module) in seen:
        raise TorchScriptFormatError(f"the module {key_prefix.rstrip('.')} contains itself")
    seen = {*seen, id(module)}
    attributes = module.state if isinstance(module.state, dict) else {}
    parameters, buffers = _declared_names(archive, prefix, module.qualified_name)
    for name in parameters + buffers:
        if attributes.get(name) is not None:
            out[key_prefix + name] = attributes[name]
    for name, value in attributes.items():
        if isinstance(value, PickledObject):
            _collect(value, archive, prefix, out, f"{key_prefix}{name}.", seen)


def read_state_dict(path):
    """``torch.jit.load(path, map_location="cpu").state_dict()``, read as data.

    Raises UntrustedPickleError when data.pkl names anything but modules, tensors and their
    storages, and TorchScriptFormatError when the archive is not laid out as expected.
    """
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise TorchScriptFormatError(f"expected one <name>/data.pkl, found {pickles or 'none'}")
        prefix = pickles[0].split("/")[0]
        with archive.open(pickles[0]) as f:
            root = _ArchiveUnpickler(f, path, archive, prefix).load()
        if not isinstance(root, PickledObject):
            raise TorchScriptFormatError(f"data.pkl holds a {type(root).__name__}, not a module")
        state = OrderedDict()
        _collect(root, archive, prefix, state)
    return state
