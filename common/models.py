"""Model zoo: a ResNet-style teacher with a downsampling stem and CNN students of three sizes.

Sizes are chosen for a 2-core CPU at 64 x 64 px: the teacher (~2.4M parameters) computes its
residual stages at 32, 16, 8 and 4 px, so it trains at a few hundred images per second, and
is over 30x the tiny satellite student (~47k parameters).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from common.errors import ConfigError


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class StudentCNN(nn.Module):
    """Plain conv-BN-ReLU stages, max-pool between stages, global average pool, linear head."""

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, w in enumerate(widths):
            layers.append(_conv_bn(cin, w))
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(x)
        out: torch.Tensor = self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(z, 1), 1))
        return out


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetTeacher(nn.Module):
    """ResNet-style teacher: stride-2 stem (64 -> 32 px), then four residual stages."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        blocks: tuple[int, ...] = (1, 1, 1, 2),
    ) -> None:
        super().__init__()
        self.stem = _conv_bn(in_channels, widths[0], stride=2)
        stages: list[nn.Module] = []
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(BasicBlock(cin, w, stride))
                cin = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.stages(self.stem(x))
        out: torch.Tensor = self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(z, 1), 1))
        return out


ModelFactory = Callable[[int, int], nn.Module]

ZOO: dict[str, ModelFactory] = {
    "tiny": lambda c, k: StudentCNN(c, k, (16, 32, 48, 64)),
    "small": lambda c, k: StudentCNN(c, k, (24, 48, 96, 128)),
    "medium": lambda c, k: StudentCNN(c, k, (32, 64, 128, 256)),
    "teacher": lambda c, k: ResNetTeacher(c, k),
}


def build_model(
    name: str, in_channels: int, num_classes: int, seed: int | None = None
) -> nn.Module:
    """Build a model of the zoo by name, in channels_last memory format (faster on CPU).

    With ``seed`` the initial weights depend on it alone, not on whatever drew from the
    process's global random state before (models trained from scratch and cached by their
    recipe need this to be the same in every process)."""
    try:
        factory = ZOO[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(ZOO)}") from None
    if seed is None:
        model = factory(in_channels, num_classes)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = factory(in_channels, num_classes)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
