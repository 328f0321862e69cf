"""VGG16 / VGG19 (the classic Gatys network) from torchvision's builders.

Layer names follow the papers: ``conv1_1``, ``relu1_1``, ..., ``pool1``, ..., ``relu5_4``.
Weights are torchvision's ImageNet files (keys ``features.N.*``; the classifier is dropped) and
the preprocessing comes from torchvision's weight metadata (ImageNet mean/std).
"""
from __future__ import annotations

from torch import Tensor, nn
from torchvision import models

from .base import Encoder, LayerInfo, Normalize

WEIGHTS = {"vgg16": models.VGG16_Weights.IMAGENET1K_V1, "vgg19": models.VGG19_Weights.IMAGENET1K_V1}
BUILDERS = {"vgg16": models.vgg16, "vgg19": models.vgg19}
CONFIGS = {"vgg16": "D", "vgg19": "E"}  # torchvision's layer configurations


def build_features(arch: str) -> nn.Sequential:
    """torchvision's ``features`` stack alone: building the whole model would also initialize the
    unused 120M-parameter classifier (seconds and half a gigabyte, for nothing)."""
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs[CONFIGS[arch]], batch_norm=False)


class VGG(Encoder):
    def __init__(self, arch: str = "vgg19"):
        super().__init__()
        self.name = arch
        meta = WEIGHTS[arch].transforms()
        self.normalize = Normalize(meta.mean, meta.std)
        self.features = build_features(arch)
        self.names: list[str] = []
        taps: dict[str, LayerInfo] = {}
        block, conv, stride, channels = 1, 0, 1, 3
        for i, m in enumerate(self.features):
            if isinstance(m, nn.Conv2d):
                conv += 1
                channels = m.out_channels
                name = f"conv{block}_{conv}"
            elif isinstance(m, nn.ReLU):
                m.inplace = False  # an in-place ReLU would overwrite the conv output we may tap
                name = f"relu{block}_{conv}"
            else:
                stride *= 2
                name = f"pool{block}"
                block, conv = block + 1, 0
            self.names.append(name)
            taps[name] = LayerInfo(name, channels, stride, f"block{min(block, 5)}")
        self.taps = taps

    def _run(self, x: Tensor, wanted: set[str]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        h = self.normalize(x)
        for name, m in zip(self.names, self.features):
            if len(out) == len(wanted):
                break
            h = m(h)
            if name in wanted:
                out[name] = h
        return out

    def load_features(self, state: dict[str, Tensor]) -> None:
        """Strict load of torchvision's ``features.N.*`` keys (classifier keys are ignored)."""
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        self.features.load_state_dict(feats, strict=True)


def state_dict_template(arch: str, classifier: bool = True) -> dict[str, Tensor]:
    """A torchvision-format state dict with random weights (tests, timing).

    ``classifier=False`` leaves out the ``classifier.*`` keys (which ``load_features`` ignores):
    about 80 MB instead of 550 MB for vgg19, and quick to build.
    """
    if classifier:
        return BUILDERS[arch](weights=None).state_dict()
    return {f"features.{k}": v for k, v in build_features(arch).state_dict().items()}
