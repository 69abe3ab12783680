"""Every weights file verified: hash in the URL, the Hub's LFS hash, trust on first use.

Against the loopback Hub of hub_server.py, with the tiny plugin of test_weights.py.
"""

# ruff: noqa: F811  (the fixtures tiny and hub are imported from test_weights)

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors.torch import save as save_bytes
from test_weights import (  # noqa: F401  (fixtures)
    MODEL,
    TOY_MODULE,
    assert_state,
    card_data,
    hub,
    pickled,
    publish_model,
    registry_with,
    sha256,
    tiny,
    upstream_state,
    zoo_state,
)

import zoo
from zoo.cards import Weights
from zoo.cli import main
from zoo.errors import CacheError, WeightsError
from zoo.weights import clear_cache, hub_file, pull, zoo_cache_dir

UNREADABLE = "/sys/zoo-test-cache"  # mkdir there fails for every user, root included


def pickle_card(url: str, **weights) -> dict:
    return card_data({"url": url, "format": "pickle", "layout": "upstream", **weights})


def cached_files(pattern: str) -> list[Path]:
    return sorted(zoo_cache_dir().glob(pattern))


# --- hash in the URL (torchvision) ------------------------------------------------------------


def test_a_url_whose_file_does_not_match_the_hash_in_its_name_is_refused(tiny, hub):
    url = hub.add_plain_file("tiny-deadbeef.pth", pickled(upstream_state(0)))
    registry = registry_with(pickle_card(url))

    with pytest.raises(WeightsError, match=r"names sha256 prefix deadbeef.*found sha256"):
        zoo.load("tiny-model", registry=registry)
    assert cached_files("converted/*.safetensors") == []
    assert cached_files("first-use/*") == []


def test_a_url_whose_file_matches_the_hash_in_its_name_loads_without_a_warning(tiny, hub):
    content = pickled(upstream_state(1))
    url = hub.add_plain_file(f"tiny-{sha256(content)[:8]}.pth", content)
    registry = registry_with(pickle_card(url, integrity="hash-in-url"))

    with warnings.catch_warnings():
        warnings.simplefilter("error", zoo.ZooWarning)
        assert_state(zoo.load("tiny-model", registry=registry), zoo_state(1))


@pytest.mark.parametrize(
    "url",
    [
        "https://download.pytorch.org/models/resnext101_32x8d-8ba56ff5.pth",
        "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
        "https://example.org/c3d.pickle",
        "https://example.org/model-v2.pth",
    ],
)
def test_the_hash_prefix_is_found_as_torch_hub_finds_it(url):
    from torch.hub import HASH_REGEX

    found = HASH_REGEX.search(url.rsplit("/", 1)[-1])
    expected = found.group(1) if found and found.group(1) else None

    assert Weights(url=url, format="pickle").url_hash_prefix == expected


# --- the Hub's announced hash ------------------------------------------------------------------


def test_bytes_corrupted_in_transit_are_caught_by_the_hubs_lfs_sha256_without_a_card_hash(
    tiny, hub
):
    publish_model(hub)
    registry = registry_with(card_data({"repo_id": "org/tiny"}))
    hub.inject(MODEL, "corrupt")

    with pytest.raises(WeightsError, match="the Hub's LFS sha256"):
        zoo.load("tiny-model", registry=registry)
    assert_state(zoo.load("tiny-model", registry=registry), zoo_state(0))
    assert hub.downloads(MODEL) == 2


def test_a_cached_file_damaged_on_disk_is_caught_removed_and_fetched_again(tiny, hub):
    publish_model(hub)
    registry = registry_with(card_data({"repo_id": "org/tiny"}))
    blob = hub_file("org/tiny", MODEL, None, card="tiny-model").resolve()
    damaged = bytearray(blob.read_bytes())
    damaged[-1] ^= 0xFF
    blob.write_bytes(bytes(damaged))

    with pytest.raises(WeightsError, match=r"sha256 mismatch.*removed"):
        zoo.load("tiny-model", registry=registry)
    assert not blob.exists()
    assert_state(zoo.load("tiny-model", registry=registry), zoo_state(0))
    assert hub.downloads(MODEL) == 2


def test_a_small_file_kept_in_git_is_checked_against_its_git_blob_id(hub):
    hub.commit("org/tiny", {"notes.txt": b"a file small enough to live in git, not in LFS\n" * 3})
    hub.inject("notes.txt", "corrupt")

    with pytest.raises(WeightsError, match=r"git-sha1 mismatch.*the Hub's git blob id"):
        hub_file("org/tiny", "notes.txt", None, card="notes")
    assert hub_file("org/tiny", "notes.txt", None, card="notes").read_bytes().startswith(b"a file")


def test_a_refused_connection_fails_at_once_without_retries(tiny, hub, monkeypatch):
    import huggingface_hub.utils._http as http

    publish_model(hub)
    registry = registry_with(card_data({"repo_id": "org/tiny"}))
    url = f"{hub.endpoint}/org/tiny/resolve/main/{MODEL}"
    hub.stop()  # the port now refuses connections
    waits: list[float] = []
    monkeypatch.setattr(http.time, "sleep", waits.append)

    with pytest.raises(WeightsError) as error:
        zoo.load("tiny-model", registry=registry)

    assert waits == []
    message = str(error.value)
    assert f"{url} is not in the local cache and cannot reach it" in message
    assert "HF_ENDPOINT" in message and "weights=FILE" in message


# --- trust on first use -------------------------------------------------------------------------


def test_a_url_without_a_hash_is_recorded_on_first_use_with_one_warning(tiny, hub):
    content = pickled(upstream_state(2))
    url = hub.add_plain_file("tiny.pth", content)
    registry = registry_with(pickle_card(url))

    trusted = rf"trusting it on first use with sha256 {sha256(content)}"
    with pytest.warns(zoo.ZooWarning, match=trusted):
        zoo.load("tiny-model", registry=registry)
    [record] = cached_files("first-use/*.json")
    assert json.loads(record.read_text())["sha256"] == sha256(content)

    clear_cache([registry.card("tiny-model")])
    with warnings.catch_warnings():
        warnings.simplefilter("error", zoo.ZooWarning)
        assert_state(zoo.load("tiny-model", registry=registry), zoo_state(2))
    assert hub.downloads("tiny.pth") == 2


def test_a_different_file_later_at_the_same_url_is_refused(tiny, hub):
    url = hub.add_plain_file("tiny.pth", pickled(upstream_state(2)))
    registry = registry_with(pickle_card(url))
    with pytest.warns(zoo.ZooWarning):
        zoo.load("tiny-model", registry=registry)
    clear_cache([registry.card("tiny-model")])
    hub.add_plain_file("tiny.pth", pickled(upstream_state(3)))

    with pytest.raises(WeightsError, match=r"is not the file first used here.*refusing it"):
        zoo.load("tiny-model", registry=registry)
    assert cached_files("converted/*.safetensors") == []


def test_pull_print_hash_gives_the_hash_a_maintainer_puts_in_the_card(tiny, hub, monkeypatch):
    content = pickled(upstream_state(4))
    url = hub.add_plain_file("tiny.pth", content)
    registry = registry_with(pickle_card(url))
    monkeypatch.setattr("zoo.registry._default", registry)

    result = CliRunner().invoke(main, ["pull", "tiny-model", "--print-hash"])
    as_json = CliRunner().invoke(main, ["pull", "tiny-model", "--print-hash", "--json"])

    assert result.exit_code == 0, result.output
    assert "warning: tiny-model: the card gives no hash for" in result.stderr
    assert f"sha256: {sha256(content)}" in result.output
    assert "integrity: first-use" in result.output
    [part] = json.loads(as_json.output)
    assert part["sha256"] == sha256(content) and part["source"] == url
    pinned = registry_with(pickle_card(url, sha256=part["sha256"]))
    clear_cache([pinned.card("tiny-model")])
    assert_state(zoo.load("tiny-model", registry=pinned), zoo_state(4))


# --- what is left behind -------------------------------------------------------------------------


def test_no_verification_marker_is_written_for_a_temporary_download(tiny, hub):
    content = pickled(upstream_state(5))
    url = hub.add_plain_file("tiny.pth", content)
    registry = registry_with(pickle_card(url, sha256=sha256(content)))

    zoo.load("tiny-model", registry=registry)
    zoo.load("tiny-model", registry=registry)  # verifies the conversion: one marker, for it

    markers = [json.loads(path.read_text()) for path in cached_files("verified/*.json")]
    assert [Path(marker["path"]).parent.name for marker in markers] == ["converted"]


def test_failed_downloads_leave_no_lock_or_partial_files(tiny, hub):
    missing = pickle_card(f"{hub.endpoint}/files/absent.pth")
    wrong_hash = pickle_card(hub.add_plain_file("tiny.pth", pickled(upstream_state(0))))
    wrong_hash["weights"]["sha256"] = "1" * 64
    publish_model(hub)
    wrong_hub_hash = card_data({"repo_id": "org/tiny", "sha256": "2" * 64})

    for card in (missing, wrong_hash, wrong_hub_hash):
        with pytest.raises(WeightsError):
            zoo.load("tiny-model", registry=registry_with(card))

    caches = Path(os.environ["HF_HUB_CACHE"]).parent
    left = [p for p in caches.rglob("*") if p.suffix in (".lock", ".incomplete", ".tmp")]
    assert left == []


# --- the converted-pickle cache ------------------------------------------------------------------


def test_a_new_plugin_version_converts_again_instead_of_reusing_the_old_conversion(tiny, hub):
    content = pickled(upstream_state(6))
    url = hub.add_plain_file("tiny.pth", content)
    registry = registry_with(pickle_card(url, sha256=sha256(content)))
    card = registry.card("tiny-model")
    architecture = registry.architecture("tiny")

    first = zoo.weights.fetch(card, architecture, plugin_version="1.0")
    again = zoo.weights.fetch(card, architecture, plugin_version="1.0")
    fixed = zoo.weights.fetch(card, architecture, plugin_version="1.1")

    assert first == again and fixed != first
    assert hub.downloads("tiny.pth") == 2


def test_an_edited_converter_converts_again(tiny, hub):
    content = pickled(upstream_state(7))
    url = hub.add_plain_file("tiny.pth", content)
    registry = registry_with(pickle_card(url, sha256=sha256(content)))
    zoo.load("tiny-model", registry=registry)

    source = tiny / f"{TOY_MODULE}.py"
    source.write_text(source.read_text() + "\n# the converter was fixed\n")
    zoo.load("tiny-model", registry=registry)

    assert hub.downloads("tiny.pth") == 2
    assert len(cached_files("converted/*.safetensors")) == 2


def test_the_registry_knows_each_built_in_architectures_plugin_version():
    from importlib.metadata import version

    registry = zoo.default_registry()

    assert (
        registry.plugin_version(registry.architecture("c3d"))
        == version("zoo-models")
        == zoo.__version__
    )


# --- caches that cannot be written ---------------------------------------------------------------


def test_the_bundled_model_loads_from_a_read_only_cache_with_one_warning(monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", UNREADABLE)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zoo.load("convlstm-moving-digits")
        zoo.load("convlstm-moving-digits")

    messages = [str(w.message) for w in caught if issubclass(w.category, zoo.ZooWarning)]
    assert len(messages) == 1 and "is not writable" in messages[0]


def test_a_zoo_cache_that_is_a_file_is_a_clear_error_when_a_conversion_needs_it(
    tiny, hub, tmp_path, monkeypatch
):
    content = pickled(upstream_state(0))
    url = hub.add_plain_file("tiny.pth", content)
    registry = registry_with(pickle_card(url, sha256=sha256(content)))
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("ZOO_CACHE", str(not_a_folder))

    with pytest.raises(CacheError, match=rf"{re.escape(str(not_a_folder))} is not a writable"):
        zoo.load("tiny-model", registry=registry)


# --- pulling and clearing ----------------------------------------------------------------------


def test_cache_clear_of_one_model_keeps_the_others_and_all_keeps_first_use_records(
    tiny, hub, monkeypatch
):
    url = hub.add_plain_file("tiny.pth", pickled(upstream_state(0)))
    publish_model(hub)
    registry = registry_with(pickle_card(url), card_data({"repo_id": "org/tiny"}, name="tiny-hub"))
    monkeypatch.setattr("zoo.registry._default", registry)
    runner = CliRunner()
    assert runner.invoke(main, ["pull", "tiny-model", "tiny-hub"]).exit_code == 0

    one = runner.invoke(main, ["cache", "--clear", "tiny-hub"])
    listing = json.loads(runner.invoke(main, ["cache", "--json"]).output)
    assert one.exit_code == 0 and "models--org--tiny" in one.output
    assert listing["hub"] == [] and len(listing["converted"]) == 1

    everything = runner.invoke(main, ["cache", "--clear", "--json"])
    assert everything.exit_code == 0, everything.output
    assert json.loads(everything.output)["freed_bytes"] > 0
    assert cached_files("converted/*") == [] and cached_files("verified/*") == []
    assert len(cached_files("first-use/*.json")) == 1


def test_pull_fetches_a_repo_published_with_zoo_push(tiny, hub, tmp_path):
    checkpoint = tmp_path / "zoo.safetensors"
    checkpoint.write_bytes(save_bytes(zoo_state(3)))
    registry = registry_with(card_data([]))
    converted = zoo.publish.convert("tiny-model", [checkpoint], tmp_path / "out", registry=registry)
    zoo.publish.push(converted.folder, "someone/tiny-zoo")

    result = CliRunner().invoke(main, ["pull", "hf-hub:someone/tiny-zoo", "--print-hash"])

    assert result.exit_code == 0, result.output
    assert f"sha256: {converted.sha256}" in result.output
    [part] = pull("hf-hub:someone/tiny-zoo")
    assert part.integrity == "sha256" and Path(part.path).is_file()
    assert hashlib.sha256(Path(part.path).read_bytes()).hexdigest() == converted.sha256
