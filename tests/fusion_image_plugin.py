"""A third-party image plugin for the fusion tests: a tiny CNN, with and without FeatureHints.

``tinyimage`` declares everything a fusion model reads (pooled features, first conv and the
config field of its input channels); ``tinyimage-pooled-only`` declares only the pooled
features (enough for late fusion, not for early fusion); ``tinyimage-bare`` is the same
network declaring none, so the fusion plugin must refuse it by name.
"""

from pydantic import BaseModel, ConfigDict

import zoo


class TinyImageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    in_channels: int = 3
    width: int = 6
    num_classes: int = 4


def build(config: TinyImageConfig):
    from torch import nn

    class TinyImage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(config.in_channels, config.width, 3, padding=1)
            self.mix = nn.Conv2d(config.width, config.width, 3, stride=2, padding=1)
            self.classifier = nn.Linear(config.width, config.num_classes)

        def pooled(self, images):
            if images.shape[1] != config.in_channels:
                raise ValueError(f"TinyImage reads {config.in_channels} channels")
            return self.mix(self.stem(images).relu()).amax(dim=(2, 3))

        def forward(self, images):
            return self.classifier(self.pooled(images))

    return TinyImage()


def pooled(model, images):
    return model.pooled(images)


HINTS = zoo.FeatureHints(
    pooled=f"{__name__}:pooled", first_conv="stem", channels_field="in_channels"
)


@zoo.hookimpl
def zoo_architectures():
    return [
        zoo.Architecture(
            name="tinyimage", builder=f"{__name__}:build", config=TinyImageConfig, features=HINTS
        ),
        zoo.Architecture(
            name="tinyimage-pooled-only",
            builder=f"{__name__}:build",
            config=TinyImageConfig,
            features=zoo.FeatureHints(pooled=f"{__name__}:pooled"),
        ),
        zoo.Architecture(
            name="tinyimage-bare", builder=f"{__name__}:build", config=TinyImageConfig
        ),
    ]
