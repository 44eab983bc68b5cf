"""The in-place QuickGELU of CLIP's MLPs against the reference expression, and MODEL.BACKBONE.COMPILE."""
import pytest
import torch

from clip.layers import QuickGELU, ResidualAttentionBlock, quick_gelu_
from engine.config import get_cfg_default
from trainers import clip_backbone
from trainers.config import extend_cfg

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def reference(x):
    return x * torch.sigmoid(1.702 * x)


class ReferenceGELU(torch.nn.Module):
    def forward(self, x):
        return reference(x)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(2, 197, 3072), (3, 50, 512), (5, 7, 100), (1000,)])
def test_inplace_forward_is_bit_identical(threads, dtype, shape):
    # ViT-B/16's hidden tensor, a tiny CLIP's, odd sizes (vector tails), and a 1-D tensor
    x = (torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 4).to(dtype)
    expected = reference(x)
    out = quick_gelu_(x)
    assert out.data_ptr() == x.data_ptr()  # written into its input
    assert torch.equal(out, expected)


def test_inplace_forward_of_a_non_contiguous_tensor():
    x = torch.randn(64, 96).t()
    expected = reference(x)
    assert torch.equal(quick_gelu_(x), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_module_overwrites_only_without_a_graph(dtype):
    act = QuickGELU(inplace=True)
    x = torch.randn(4, 10, 256).to(dtype)
    expected = reference(x)
    with torch.no_grad():
        y = x.clone()
        out = act(y)
    assert out.data_ptr() == y.data_ptr() and torch.equal(out, expected)
    # autograd needs the input: out of place, and backward is the expression's own
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    out_a = act(a)
    assert torch.equal(a.detach(), x) and out_a.data_ptr() != a.data_ptr()
    grad = torch.randn_like(out_a)
    out_a.backward(grad)
    reference(b).backward(grad)
    assert torch.equal(out_a, expected) and torch.equal(a.grad, b.grad)


def test_plain_module_never_overwrites():
    x = torch.randn(3, 64)
    y = x.clone()
    with torch.no_grad():
        out = QuickGELU()(y)
    assert torch.equal(y, x) and torch.equal(out, reference(x))


def _block_pair(frozen):
    """Two identical blocks with a deep prompt: ours (in-place QuickGELU) and one with the expression."""
    torch.manual_seed(0)
    ours = ResidualAttentionBlock(128, 2)
    ours.add_prompt(2)
    theirs = ResidualAttentionBlock(128, 2)
    theirs.add_prompt(2)
    theirs.load_state_dict(ours.state_dict())
    theirs.mlp.gelu = ReferenceGELU()
    for block in (ours, theirs):
        for name, p in block.named_parameters():
            p.requires_grad_(name == "VPT_shallow" or not frozen)
    return ours, theirs


@pytest.mark.parametrize("frozen", [True, False], ids=["frozen-prompted", "fine-tuned"])
def test_block_forward_and_backward_match_the_expression(frozen):
    # the deep-prompt trainers' case (IVLP, MaPLe, PromptSRC): frozen blocks, gradients to the prompts
    ours, theirs = _block_pair(frozen)
    x = torch.randn(3, 12, 128)
    outs, grads = [], []
    for block in (ours, theirs):
        out = block(x, prompt=block.VPT_shallow, start=10)  # [3, 12, 128]
        out.pow(2).sum().backward()
        outs.append(out.detach())
        grads.append({n: p.grad for n, p in block.named_parameters() if p.requires_grad})
    assert torch.equal(outs[0], outs[1])
    assert grads[0].keys() == grads[1].keys() and "VPT_shallow" in grads[0]
    for name in grads[0]:
        assert torch.equal(grads[0][name], grads[1][name]), name
    with torch.no_grad():  # evaluation: the in-place path, same values
        assert torch.equal(ours(x, prompt=ours.VPT_shallow, start=10), outs[1])


def _cfg(compile_flag, path):
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_list(["MODEL.BACKBONE.PATH", path, "MODEL.BACKBONE.COMPILE", str(compile_flag)])
    return cfg


@pytest.fixture
def compiled_modules(monkeypatch):
    """The modules nn.Module.compile() is called on (not compiled: tests stay fast)."""
    calls = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: calls.append(self))
    return calls


def test_compile_is_off_by_default(tiny_vit_path, compiled_modules, capsys):
    assert extend_cfg(get_cfg_default()).MODEL.BACKBONE.COMPILE is False
    clip_backbone.load_clip(_cfg(False, tiny_vit_path), "fp32", torch.device("cpu"))
    assert compiled_modules == [] and "COMPILE" not in capsys.readouterr().out


def test_compile_key_compiles_the_image_encoder(tiny_vit_path, compiled_modules, monkeypatch, capsys):
    monkeypatch.setattr(clip_backbone, "_probe_compile", lambda device: None)
    model = clip_backbone.load_clip(_cfg(True, tiny_vit_path), "fp32", torch.device("cpu"))
    assert compiled_modules == [model.visual]
    assert "MODEL.BACKBONE.COMPILE: the image encoder runs under torch.compile" in capsys.readouterr().out


def test_compile_falls_back_to_eager_with_one_line(tiny_vit_path, compiled_modules, monkeypatch, capsys):
    def failing_compile(fn, *args, **kwargs):
        def run(*a, **k):  # torch.compile fails at the first call, e.g. without a C++ compiler
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

        return run

    monkeypatch.setattr(torch, "compile", failing_compile)
    model = clip_backbone.load_clip(_cfg(True, tiny_vit_path), "fp32", torch.device("cpu"))
    assert compiled_modules == []
    lines = [line for line in capsys.readouterr().out.splitlines() if "COMPILE" in line]
    assert lines == [
        "MODEL.BACKBONE.COMPILE: torch.compile is unavailable (RuntimeError: InvalidCxxCompiler: No working C++ "
        "compiler found); running the image encoder eagerly"
    ]
    with torch.no_grad():
        assert model.visual(torch.randn(1, 3, 32, 32)).shape == (1, 32)
