"""Weights through the real huggingface_hub client, against the loopback Hub in hub_server.py.

A tiny architecture (``tiny``, with an ``upstream`` layout whose converter
renames and transposes) keeps every case fast and independent of the plugins.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from hub_server import LoopbackHub
from safetensors.torch import save as save_bytes

import zoo
from zoo import publish
from zoo.errors import WeightsError
from zoo.output import RECORD
from zoo.registry import Registry

TINY_SOURCE = '''
from pydantic import BaseModel, ConfigDict

import zoo


class TinyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = 4


def build(config):
    from torch import nn

    return nn.Sequential(
        nn.Linear(3, config.width), nn.BatchNorm1d(config.width), nn.Linear(config.width, 2)
    )


def build_pair(config):
    from torch import nn

    return nn.ModuleDict({"rgb": build(config), "flow": build(config)})


UPSTREAM = {"stem": "0", "norm": "1", "head": "2"}


def from_upstream(state, config):
    """Upstream names layers stem/norm/head and stores linear weights transposed."""
    converted = {}
    for key, value in state.items():
        layer, _, rest = key.partition(".")
        if layer not in UPSTREAM:
            raise KeyError(f"unexpected upstream key {key!r}")
        linear = rest == "weight" and value.dim() == 2
        converted[f"{UPSTREAM[layer]}.{rest}"] = value.t() if linear else value
    return converted


@zoo.hookimpl
def zoo_architectures():
    converters = {"upstream": __name__ + ":from_upstream"}
    return [
        zoo.Architecture(name="tiny", builder=__name__ + ":build", config=TinyConfig,
                         converters=converters),
        zoo.Architecture(name="tiny-pair", builder=__name__ + ":build_pair", config=TinyConfig,
                         converters=converters),
    ]
'''
TOY_MODULE = "zoo_weights_tiny"
MODEL = "model.safetensors"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny plugin as an importable module file; returns its folder (for PYTHONPATH)."""
    folder = tmp_path_factory.mktemp("plugin")
    (folder / f"{TOY_MODULE}.py").write_text(TINY_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop(TOY_MODULE, None)
    return folder


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoopbackHub:
    """A running loopback Hub, with huggingface_hub and zoo pointed at it and at a fresh cache.

    huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE into
    ``huggingface_hub.constants`` at import, and its functions read those
    attributes at call time; so the environment (for subprocesses) and the
    constants (for this process) are both set.
    """
    import huggingface_hub.constants as constants

    server = LoopbackHub()
    endpoint = server.start()
    cache = tmp_path / "cache" / "hub"
    settings = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": False,
    }
    for name, value in settings.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("ZOO_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_loopback")  # zoo push asks for one before it sends
    yield server
    server.stop()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub waits 1-8 s between retries; the retries still happen, without the wait."""
    import huggingface_hub.file_download as file_download
    import huggingface_hub.utils._http as http

    monkeypatch.setattr(http.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(file_download.time, "sleep", lambda seconds: None)


def go_offline(hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    hub.stop()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# --- helpers ----------------------------------------------------------------------------------


def zoo_state(seed: int = 0, prefix: str = "") -> dict[str, torch.Tensor]:
    """A state dict in the zoo layout of ``tiny`` (width 4), with random BatchNorm statistics."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator)

    state = {
        "0.weight": rand(4, 3),
        "0.bias": rand(4),
        "1.weight": rand(4),
        "1.bias": rand(4),
        "1.running_mean": rand(4),
        "1.running_var": rand(4) + 0.5,
        "1.num_batches_tracked": torch.tensor(7),
        "2.weight": rand(2, 4),
        "2.bias": rand(2),
    }
    return {f"{prefix}{key}": value for key, value in state.items()}


def upstream_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The same weights as ``zoo_state(seed)`` in the upstream layout (renamed, transposed)."""
    names = {"0": "stem", "1": "norm", "2": "head"}
    state = {}
    for key, value in zoo_state(seed).items():
        layer, _, rest = key.partition(".")
        linear = rest == "weight" and value.dim() == 2
        state[f"{names[layer]}.{rest}"] = value.t().contiguous() if linear else value
    return state


def pickled(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def card_data(weights: Any, architecture: str = "tiny", name: str = "tiny-model") -> dict:
    return {
        "name": name,
        "architecture": architecture,
        "config": {"width": 4},
        "task": "image-classification",
        "summary": "A tiny model for weights tests.",
        "inputs": [{"name": "x", "layout": "NCHW", "channels": 3, "size": [1, 1]}],
        "outputs": [{"name": "logits", "shape": [2]}],
        "parameters": 34,
        "license": "mit",
        "weights": weights,
    }


def registry_with(*cards: dict) -> Registry:
    import importlib

    plugin = importlib.import_module(TOY_MODULE)
    holder = types.ModuleType("zoo_weights_cards")

    @zoo.hookimpl
    def zoo_cards():
        return list(cards)

    holder.zoo_cards = zoo_cards
    return Registry.from_plugins({"tiny": plugin, "cards": holder})


def assert_state(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert sorted(state) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def hub_url(hub: LoopbackHub, repo: str, filename: str, revision: str = "main") -> str:
    return f"{hub.endpoint}/{repo}/resolve/{revision}/{filename}"


def publish_model(hub: LoopbackHub, repo: str = "org/tiny", seed: int = 0, **kw: Any) -> str:
    content = save_bytes(zoo_state(seed))
    hub.commit(repo, {MODEL: content}, **kw)
    return sha256(content)


# --- Hub safetensors --------------------------------------------------------------------------


def test_first_download_then_cached_offline_without_rehash(tiny, hub, monkeypatch):
    digest = publish_model(hub)
    registry = registry_with(card_data({"repo_id": "org/tiny", "sha256": digest}))

    model = zoo.load("tiny-model", registry=registry)
    assert_state(model, zoo_state(0))
    assert not model.training
    assert hub.downloads(MODEL) == 1

    go_offline(hub, monkeypatch)
    monkeypatch.setattr("zoo.weights.integrity.sha256_of", _must_not_hash)
    monkeypatch.setitem(zoo.weights.integrity.HASHERS, "sha256", _must_not_hash)
    again = zoo.load("tiny-model", registry=registry, dtype=torch.float64)
    assert again[0].weight.dtype == torch.float64
    assert torch.equal(again[0].weight.float(), zoo_state(0)["0.weight"])


def _must_not_hash(path: Path) -> str:
    raise AssertionError(f"{path} was hashed again although it was verified and unchanged")


def test_offline_and_not_cached_is_a_clear_error(tiny, hub, monkeypatch):
    publish_model(hub)
    registry = registry_with(card_data({"repo_id": "org/tiny"}))
    url = hub_url(hub, "org/tiny", MODEL)
    go_offline(hub, monkeypatch)
    with pytest.raises(WeightsError) as error:
        zoo.load("tiny-model", registry=registry)

    message = str(error.value)
    assert f"{url} is not in the local cache" in message
    assert "HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE" in message
    assert "weights=FILE" in message and "zoo pull" not in message  # advice, not a loop


def test_revision_pin_loads_that_commit(tiny, hub):
    first = hub.commit("org/tiny", {MODEL: save_bytes(zoo_state(1))}, tag="v1")
    hub.commit("org/tiny", {MODEL: save_bytes(zoo_state(2))})
    for revision in ("v1", first):
        registry = registry_with(card_data({"repo_id": "org/tiny", "revision": revision}))
        assert_state(zoo.load("tiny-model", registry=registry), zoo_state(1))
    registry = registry_with(card_data({"repo_id": "org/tiny"}))
    assert_state(zoo.load("tiny-model", registry=registry), zoo_state(2))


def test_missing_file_is_a_clear_404(tiny, hub):
    publish_model(hub)
    registry = registry_with(card_data({"repo_id": "org/tiny", "filename": "absent.safetensors"}))
    with pytest.raises(WeightsError, match=r"org/tiny/absent.safetensors@main does not exist"):
        zoo.load("tiny-model", registry=registry)


def test_missing_repo_and_revision(tiny, hub):
    publish_model(hub)
    for weights, message in (
        ({"repo_id": "org/nothing"}, "repository of org/nothing"),
        ({"repo_id": "org/tiny", "revision": "v9"}, "revision of org/tiny"),
    ):
        with pytest.raises(WeightsError, match=message):
            zoo.load("tiny-model", registry=registry_with(card_data(weights)))


def test_server_error_is_retried_then_reported(tiny, hub, no_backoff):
    digest = publish_model(hub)
    registry = registry_with(card_data({"repo_id": "org/tiny", "sha256": digest}))
    hub.inject(MODEL, "500")
    assert_state(zoo.load("tiny-model", registry=registry), zoo_state(0))

    publish_model(hub, repo="org/other")
    registry = registry_with(card_data({"repo_id": "org/other"}))
    hub.inject(MODEL, *["500"] * 20)
    with pytest.raises(WeightsError, match="500"):
        zoo.load("tiny-model", registry=registry)


def test_wrong_sha256_fails_every_time_and_leaves_nothing_cached(tiny, hub):
    publish_model(hub)
    wrong = "0" * 64
    registry = registry_with(card_data({"repo_id": "org/tiny", "sha256": wrong}))
    for attempt in (1, 2):
        with pytest.raises(WeightsError) as error:
            zoo.load("tiny-model", registry=registry)
        message = str(error.value)
        assert MODEL in message and f"expected {wrong}" in message and "found " in message
        assert hub.downloads(MODEL) == attempt
    blobs = list(Path(os.environ["HF_HUB_CACHE"]).glob("models--org--tiny/blobs/*"))
    assert blobs == []


def test_wrong_bytes_in_transit_are_rejected_then_downloaded_again(tiny, hub):
    digest = publish_model(hub)
    registry = registry_with(card_data({"repo_id": "org/tiny", "sha256": digest}))
    hub.inject(MODEL, "corrupt")
    with pytest.raises(WeightsError, match=f"expected {digest}"):
        zoo.load("tiny-model", registry=registry)
    assert_state(zoo.load("tiny-model", registry=registry), zoo_state(0))
    assert hub.downloads(MODEL) == 2


def test_truncated_transfer_is_resumed(tiny, hub, no_backoff):
    digest = publish_model(hub)
    registry = registry_with(card_data({"repo_id": "org/tiny", "sha256": digest}))
    hub.inject(MODEL, "truncate")
    assert_state(zoo.load("tiny-model", registry=registry), zoo_state(0))
    assert hub.downloads(MODEL) == 2


def test_truncated_transfer_that_never_completes_is_an_error(tiny, hub, no_backoff):
    publish_model(hub)
    registry = registry_with(card_data({"repo_id": "org/tiny"}))
    hub.inject(MODEL, *["truncate"] * 20)
    with pytest.raises(WeightsError, match=r"downloading org/tiny/model\.safetensors@main failed"):
        zoo.load("tiny-model", registry=registry)


def test_truncated_file_without_hash_is_a_clear_error(tiny, hub):
    hub.commit("org/tiny", {MODEL: save_bytes(zoo_state(0))[:-100]})
    registry = registry_with(card_data({"repo_id": "org/tiny"}))
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        zoo.load("tiny-model", registry=registry)


def test_upstream_layout_is_converted_and_keys_checked(tiny, hub, tmp_path):
    hub.commit("org/up", {MODEL: save_bytes(upstream_state(3))})
    registry = registry_with(card_data({"repo_id": "org/up", "layout": "upstream"}))
    assert_state(zoo.load("tiny-model", registry=registry), zoo_state(3))

    wrong = tmp_path / "wrong.safetensors"
    wrong.write_bytes(save_bytes({**zoo_state(0), "extra.weight": torch.zeros(1)}))
    with pytest.raises(WeightsError, match=r"unexpected keys \[extra.weight\]"):
        zoo.load("tiny-model", weights=wrong, registry=registry)


# --- upstream pickles -------------------------------------------------------------------------


def test_pickle_origin_is_fetched_once_converted_and_cached(tiny, hub, monkeypatch):
    content = pickled({"state_dict": upstream_state(4), "epoch": 3})
    url = hub.add_plain_file("tiny_upstream.pth", content)
    part = {"url": url, "format": "pickle", "layout": "upstream", "sha256": sha256(content)}
    registry = registry_with(card_data(part))

    assert_state(zoo.load("tiny-model", registry=registry), zoo_state(4))
    assert_state(zoo.load("tiny-model", registry=registry), zoo_state(4))
    assert hub.downloads("tiny_upstream.pth") == 1
    go_offline(hub, monkeypatch)
    assert_state(zoo.load("tiny-model", registry=registry), zoo_state(4))
    converted = list(Path(os.environ["HF_HUB_CACHE"]).parent.glob("zoo/converted/*.safetensors"))
    assert len(converted) == 1


def test_pickle_origin_offline_and_not_converted(tiny, hub, monkeypatch):
    url = hub.add_plain_file("tiny.pth", pickled(upstream_state(0)))
    registry = registry_with(card_data({"url": url, "format": "pickle", "layout": "upstream"}))
    go_offline(hub, monkeypatch)
    with pytest.raises(WeightsError, match=rf"{re.escape(url)} is not in the local cache.*OFFLINE"):
        zoo.load("tiny-model", registry=registry)


def test_pickle_origin_with_wrong_hash_is_not_kept(tiny, hub):
    url = hub.add_plain_file("tiny.pth", pickled(upstream_state(0)))
    part = {"url": url, "format": "pickle", "layout": "upstream", "sha256": "1" * 64}
    registry = registry_with(card_data(part))
    for attempt in (1, 2):
        with pytest.raises(WeightsError, match="sha256 mismatch for"):
            zoo.load("tiny-model", registry=registry)
        assert hub.downloads("tiny.pth") == attempt


def test_pickle_origin_on_the_hub_and_missing_url(tiny, hub):
    content = pickled({"model": upstream_state(5)})
    hub.commit("org/pickles", {"weights.pt": content})
    part = {
        "repo_id": "org/pickles",
        "filename": "weights.pt",
        "format": "pickle",
        "layout": "upstream",
        "sha256": sha256(content),
    }
    assert_state(zoo.load("tiny-model", registry=registry_with(card_data(part))), zoo_state(5))

    missing = {"url": f"{hub.endpoint}/files/absent.pth", "format": "pickle", "layout": "upstream"}
    with pytest.raises(WeightsError, match=r"absent\.pth failed"):
        zoo.load("tiny-model", registry=registry_with(card_data(missing)))


class Payload:
    """Anything that is not a tensor container: weights_only=True must refuse it."""


def test_pickles_are_never_unpickled_freely(tiny, hub):
    url = hub.add_plain_file("evil.pth", pickled({"state_dict": upstream_state(0), "x": Payload()}))
    registry = registry_with(card_data({"url": url, "format": "pickle", "layout": "upstream"}))
    with pytest.raises(WeightsError, match="weights_only=True"):
        zoo.load("tiny-model", registry=registry)


def test_two_part_card_from_a_hub_file_and_a_pickle(tiny, hub):
    hub.commit("org/rgb", {MODEL: save_bytes(zoo_state(6))})
    url = hub.add_plain_file("flow.pth", pickled(upstream_state(7)))
    parts = [
        {"repo_id": "org/rgb", "prefix": "rgb."},
        {"url": url, "format": "pickle", "layout": "upstream", "prefix": "flow."},
    ]
    registry = registry_with(card_data(parts, architecture="tiny-pair"))
    model = zoo.load("tiny-model", registry=registry)
    assert_state(model, {**zoo_state(6, "rgb."), **zoo_state(7, "flow.")})


# --- two processes, one download --------------------------------------------------------------

LOADER = """
import sys, torch, zoo, importlib, types
from zoo.registry import Registry
plugin = importlib.import_module("zoo_weights_tiny")
holder = types.ModuleType("cards")
card = {card!r}
holder.zoo_cards = zoo.hookimpl(lambda: [card])
model = zoo.load("tiny-model", registry=Registry.from_plugins({{"tiny": plugin, "c": holder}}))
print(float(sum(t.double().sum() for t in model.state_dict().values())))
"""


def test_two_processes_load_at_once_with_one_download(tiny, hub):
    digest = publish_model(hub, seed=8)
    hub.inject(MODEL, "slow")
    script = LOADER.format(card=card_data({"repo_id": "org/tiny", "sha256": digest}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tiny), *sys.path])}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    expected = float(sum(t.double().sum() for t in zoo_state(8).values()))
    for process, (out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
        assert float(out.strip()) == pytest.approx(expected, rel=1e-12)
    assert hub.downloads(MODEL) == 1


# --- convert and push -------------------------------------------------------------------------


def test_convert_push_then_load_from_hf_hub(tiny, hub, tmp_path):
    checkpoint = tmp_path / "upstream.pth"
    checkpoint.write_bytes(pickled({"state_dict": upstream_state(9)}))
    registry = registry_with(
        card_data({"url": "https://example.org/x.pth", "format": "pickle", "layout": "upstream"})
    )
    result = publish.convert("tiny-model", [checkpoint], tmp_path / "out", registry=registry)
    folder = Path(result.folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        RECORD,  # zoo's record of the files it wrote (zoo.output)
        "README.md",
        "card.yaml",
        MODEL,
        f"{MODEL}.sha256",
    ]
    commit = publish.push(folder, "someone/tiny-zoo")

    model = zoo.load("hf-hub:someone/tiny-zoo", registry=registry)
    assert_state(model, zoo_state(9))
    pinned = zoo.load(f"hf-hub:someone/tiny-zoo@{commit.oid}", registry=registry)
    assert_state(pinned, zoo_state(9))
    card, _ = zoo.weights.fetch_hub_repo("someone/tiny-zoo", with_weights=False)
    assert card.weights[0].repo_id == "someone/tiny-zoo"
    assert card.weights[0].sha256 == (folder / f"{MODEL}.sha256").read_text().split()[0]


def test_push_refuses_a_folder_whose_weights_changed(tiny, hub, tmp_path):
    checkpoint = tmp_path / "zoo.safetensors"
    checkpoint.write_bytes(save_bytes(zoo_state(0)))
    registry = registry_with(card_data([]))
    result = publish.convert("tiny-model", [checkpoint], tmp_path / "out", registry=registry)
    folder = Path(result.folder)
    (folder / MODEL).write_bytes(save_bytes(zoo_state(1)))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        publish.push(folder, "someone/tiny-zoo")


def test_convert_checks_the_checkpoint_fits(tiny, tmp_path):
    checkpoint = tmp_path / "upstream.pth"
    checkpoint.write_bytes(pickled(upstream_state(0)))
    registry = registry_with(card_data([]))
    with pytest.raises(WeightsError, match="missing keys"):
        publish.convert("tiny-model", [checkpoint], tmp_path / "out", registry=registry)
    assert not (tmp_path / "out").exists()
    with pytest.raises(WeightsError, match="1 weights part"):
        publish.convert("tiny-model", [checkpoint, checkpoint], tmp_path / "o", registry=registry)
