"""Building on meta and assigning weights: strict, complete, converted in memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import card_data, cards_plugin
from safetensors.torch import save_file

import zoo
from zoo.registry import Registry

MAPS = Path("/proc/self/maps")


@pytest.fixture
def registry(toy_plugin) -> Registry:
    return Registry.from_plugins({"toy": toy_plugin, "cards": cards_plugin("cards", card_data())})


@pytest.fixture
def reference(registry):
    torch.manual_seed(0)
    model = zoo.build("toy", {"width": 4}, registry=registry).eval()
    model[1].running_mean.normal_()
    model[1].running_var.uniform_(0.5, 2.0)
    return model


def saved(path, state) -> str:
    save_file({key: value.contiguous() for key, value in state.items()}, path)
    return str(path)


def test_weights_in_the_zoo_layout_reproduce_the_model(tmp_path, registry, reference):
    path = saved(tmp_path / "toy.safetensors", reference.state_dict())

    loaded = zoo.load("toy", weights=path, registry=registry)

    image = torch.rand(2, 3, 8, 8)
    assert not loaded.training
    torch.testing.assert_close(loaded(image), reference(image), rtol=0, atol=0)


def test_an_upstream_layout_is_converted_in_memory(tmp_path, registry, reference):
    upstream = {f"net.{key}": value for key, value in reference.state_dict().items()}
    path = saved(tmp_path / "upstream.safetensors", upstream)

    loaded = zoo.build("toy", {"width": 4}, weights=path, layout="prefixed", registry=registry)

    image = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(loaded.eval()(image), reference(image), rtol=0, atol=0)


def mapped_ranges(path: Path) -> list[tuple[int, int]]:
    """The address ranges this process maps from ``path``, as Linux lists them."""
    target = str(path.resolve())
    ranges = []
    for line in MAPS.read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target:
            low, high = (int(address, 16) for address in fields[0].split("-"))
            ranges.append((low, high))
    return ranges


@pytest.mark.skipif(not MAPS.exists(), reason="reads the process's mappings from /proc (Linux)")
def test_weights_are_assigned_not_copied(tmp_path, registry, reference):
    """The parameters are the memory-mapped file's bytes: no second copy of the weights."""
    path = tmp_path / "toy.safetensors"
    saved(path, reference.state_dict())

    loaded = zoo.build("toy", {"width": 4}, weights=path, registry=registry)

    ranges = mapped_ranges(path)
    assert ranges, f"nothing keeps {path} mapped: the weights were copied"
    for name, tensor in loaded.state_dict().items():
        start, end = tensor.data_ptr(), tensor.data_ptr() + tensor.nbytes
        assert any(low <= start and end <= high for low, high in ranges), name


def test_missing_and_unexpected_keys_are_listed(tmp_path, registry, reference):
    state = reference.state_dict()
    state["extra.weight"] = state.pop("4.weight")
    path = saved(tmp_path / "toy.safetensors", state)

    with pytest.raises(
        zoo.WeightsError, match=r"missing keys \[4\.weight\].*unexpected keys \[extra\.weight\]"
    ):
        zoo.load("toy", weights=path, registry=registry)


def test_a_shape_mismatch_names_the_key_and_both_shapes(tmp_path, registry, reference):
    state = reference.state_dict()
    state["4.bias"] = torch.zeros(5)
    path = saved(tmp_path / "toy.safetensors", state)

    with pytest.raises(zoo.WeightsError, match=r"4\.bias: expected \(4,\), found \(5,\)"):
        zoo.load("toy", weights=path, registry=registry)


def test_an_unknown_layout_lists_the_known_ones(tmp_path, registry, reference):
    path = saved(tmp_path / "toy.safetensors", reference.state_dict())

    with pytest.raises(
        ValueError, match="no converter for layout 'timm'; known layouts: prefixed, zoo"
    ):
        zoo.build("toy", {"width": 4}, weights=path, layout="timm", registry=registry)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_file_is_a_clear_error(tmp_path, registry, reference, damage):
    path = tmp_path / "toy.safetensors"
    saved(path, reference.state_dict())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not safetensors at all")

    with pytest.raises(zoo.WeightsError, match="not a readable safetensors file"):
        zoo.load("toy", weights=path, registry=registry)


def test_dtype_and_device_are_applied(tmp_path, registry, reference):
    """``meta`` stands in for an accelerator: a device that is not the default ``cpu``."""
    path = saved(tmp_path / "toy.safetensors", reference.state_dict())

    doubled = zoo.load("toy", weights=path, dtype=torch.float64, registry=registry)
    moved = zoo.load("toy", weights=path, device="meta", registry=registry)

    assert {p.dtype for p in doubled.parameters()} == {torch.float64}
    image = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(doubled(image), reference.double()(image))
    assert {tensor.device.type for tensor in moved.state_dict().values()} == {"meta"}


def test_pretrained_false_builds_a_random_model(registry):
    model = zoo.load("toy", pretrained=False, registry=registry)

    assert sum(p.numel() for p in model.parameters()) == card_data()["parameters"]


def test_a_card_without_weights_asks_for_them(registry):
    with pytest.raises(zoo.WeightsError, match="names no pretrained weights"):
        zoo.load("toy", registry=registry)


def test_a_config_may_be_any_mapping_as_builds_signature_says(registry):
    from types import MappingProxyType

    model = zoo.build("toy", MappingProxyType({"width": 6}), registry=registry)

    assert model[0].out_channels == 6
