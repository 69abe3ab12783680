"""A third-party image classifier for the fine-tuning tests: small, and it sees where things are.

``tinyframe`` is a strided convolution whose feature map is flattened, not pooled, so its
features keep the position of what it sees: the backbone a CNN+LSTM needs to tell where a
square went from frame to frame. It declares every hint fine-tuning and the fusion models
read (pooled features and their width, first conv and its channels field, the classifier),
as any third-party plugin would.
"""

from pydantic import BaseModel, ConfigDict

import zoo


class TinyFrameConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    in_channels: int = 3
    width: int = 4
    size: int = 16
    num_classes: int = 3


def build(config: TinyFrameConfig):
    from torch import nn

    class TinyFrame(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(config.in_channels, config.width, 3, stride=2, padding=1)
            self.fc = nn.Linear(pooled_width(config), config.num_classes)

        def pooled(self, images):
            if images.dim() != 4 or images.shape[1] != config.in_channels:
                raise ValueError(f"TinyFrame takes (N, {config.in_channels}, H, W) images")
            return self.stem(images).relu().flatten(1)

        def forward(self, images):
            return self.fc(self.pooled(images))

    return TinyFrame()


def pooled(model, images):
    return model.pooled(images)


def pooled_width(config: TinyFrameConfig) -> int:
    return config.width * ((config.size + 1) // 2) ** 2


@zoo.hookimpl
def zoo_architectures():
    return [
        zoo.Architecture(
            name="tinyframe",
            builder=f"{__name__}:build",
            config=TinyFrameConfig,
            features=zoo.FeatureHints(
                pooled=f"{__name__}:pooled",
                pooled_width=f"{__name__}:pooled_width",
                first_conv="stem",
                channels_field="in_channels",
                classifier="fc",
            ),
        )
    ]
