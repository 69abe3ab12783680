"""Wrong invocations of the real ``zoo`` command, each in a subprocess of its own.

Every one must exit non-zero with ONE short line on stderr, no traceback, and
leave no new file outside its cache. Each runs in a fresh copy of the same input
folder with private caches; nothing reaches the internet (the Hub endpoint is a
loopback port that refuses connections). The invocations run four at a time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import yaml

import zoo
from zoo import publish
from zoo.weights import bundled_path

ZOO = str(Path(sys.executable).with_name("zoo"))
CACHE = ".cache"  # inside each case's folder; the only place a case may write
UNWRITABLE = "/sys/zoo-misuse"
MAX_MESSAGE = 400


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    expect: str  # a fragment the one line must hold
    env: dict[str, str] = field(default_factory=dict)


def case(id: str, args: str, expect: str, **env: str) -> Case:
    return Case(id, tuple(args.split()), expect, env)


CASES = [
    case("unknown-command", "frobnicate", "No such command 'frobnicate'"),
    case("info-without-name", "info", "Missing argument 'NAME'"),
    case("info-unknown-model", "info no-such-model", "unknown model 'no-such-model'"),
    case("info-typo-suggests", "info c3d-sports1", "did you mean 'c3d-sports1m'"),
    case("info-unknown-flag", "info c3d --bogus", "No such option '--bogus'"),
    case("list-unknown-task", "list --task video", "known tasks: feature-extraction"),
    case("list-unknown-architecture", "list --architecture nope", "unknown architecture 'nope'"),
    case("plugins-unknown-flag", "plugins --bogus", "No such option '--bogus'"),
    case("card-unknown-subcommand", "card frob", "No such command 'frob'"),
    case("validate-nothing", "card validate", "Missing argument 'FILES...'"),
    case("validate-missing-file", "card validate missing.yaml", "1 of 1 cards are invalid"),
    case("validate-binary-file", "card validate binary.yaml", "1 of 1 cards are invalid"),
    case("validate-unknown-arch", "card validate unknown-arch.yaml", "1 of 1 cards are invalid"),
    case("render-unknown-model", "card render nope", "unknown model 'nope'"),
    case("render-unwritable", f"card render c3d -o {UNWRITABLE}/", f"cannot write {UNWRITABLE}"),
    case(
        "convert-text-file",
        "convert c3d --checkpoint text.pth -o out",
        "is not a PyTorch checkpoint or safetensors file",
    ),
    case(
        "convert-hello-world",
        "convert c3d --checkpoint hello.pth -o out",
        "is not a PyTorch checkpoint or safetensors file",
    ),
    case("convert-missing-checkpoint", "convert c3d --checkpoint nope.pth -o out", "nope.pth"),
    case("convert-without-output", "convert c3d --checkpoint ck.pth", "Missing option '-o'"),
    case(
        "convert-plugin-error",
        "convert convlstm-moving-digits --checkpoint ck.pth --layout conv-lstm -o out",
        "the 'conv-lstm' converter of architecture 'convlstm' failed",
    ),
    case(
        "convert-unknown-layout",
        "convert c3d --checkpoint ck.pth --layout caffe -o out",
        "no converter for layout 'caffe'",
    ),
    case(
        "convert-into-users-folder",
        "convert convlstm-moving-digits --checkpoint convlstm.safetensors -o mine",
        "README.md exists and zoo did not write it",
    ),
    case(
        "convert-onto-a-file",
        "convert convlstm-moving-digits --checkpoint convlstm.safetensors -o file.txt",
        "exists and is not a folder",
    ),
    case(
        "convert-unwritable",
        f"convert convlstm-moving-digits --checkpoint convlstm.safetensors -o {UNWRITABLE}/x",
        f"cannot write {UNWRITABLE}",
    ),
    case("push-missing-folder", "push nope --repo me/x", "'nope' does not exist"),
    case("push-without-repo", "push zoo-folder", "Missing option '--repo'"),
    case("push-bad-repo-name", "push zoo-folder --repo x", "a Hub repo is named org/name"),
    case("push-without-token", "push zoo-folder --repo me/x", "needs a Hugging Face token"),
    case(
        "push-not-a-zoo-folder",
        "push mine --repo me/x",
        "is not a zoo folder",
        HF_TOKEN="hf_test",
    ),
    case(
        "push-endpoint-refuses",
        "push zoo-folder --repo me/x",
        "cannot reach",
        HF_TOKEN="hf_test",
    ),
    case("pull-nothing", "pull", "Missing argument 'NAMES...'"),
    case("pull-unknown-model", "pull no-such-model", "unknown model 'no-such-model'"),
    case("pull-empty-hf-hub", "pull hf-hub:", "hf-hub:org/name[@revision]"),
    case("pull-hf-hub-unreachable", "pull hf-hub:org/name", "cannot reach it"),
    case("pull-offline", "pull c3d", "HF_HUB_OFFLINE is set", HF_HUB_OFFLINE="1"),
    case("cache-unknown-model", "cache --clear no-such-model", "unknown model 'no-such-model'"),
    case(
        "info-disabled-plugin",
        "info i3d-kinetics",
        "belongs to plugin 'i3d', which is disabled by ZOO_DISABLE_PLUGINS",
        ZOO_DISABLE_PLUGINS="i3d",
    ),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the wrong invocations are given, made once."""
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "text.pth").write_text("t")
    (folder / "hello.pth").write_text("hello world")
    torch.save({"encoder.cell_list.0.conv.weight": torch.zeros(1)}, folder / "ck.pth")
    shutil.copy(
        bundled_path(zoo.card("convlstm-moving-digits").weights[0].bundled),
        folder / "convlstm.safetensors",
    )
    (folder / "binary.yaml").write_bytes(bytes(range(256)))
    unknown = {**zoo.card("c3d").to_data(), "name": "x", "aliases": [], "architecture": "nope"}
    (folder / "unknown-arch.yaml").write_text(yaml.safe_dump(unknown))
    (folder / "mine").mkdir()
    (folder / "mine" / "README.md").write_text("my notes\n")
    (folder / "mine" / "notes.txt").write_text("more\n")
    (folder / "file.txt").write_text("x\n")
    publish.convert(
        "convlstm-moving-digits", [folder / "convlstm.safetensors"], folder / "zoo-folder"
    )
    return folder


@pytest.fixture(scope="module")
def refused_endpoint() -> str:
    """A loopback port that was just closed: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def results(inputs, refused_endpoint, tmp_path_factory) -> dict[str, tuple]:
    root = tmp_path_factory.mktemp("misuse")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            case.id: pool.submit(run_case, case, inputs, root / case.id, refused_endpoint)
            for case in CASES
        }
        return {name: future.result() for name, future in futures.items()}


def run_case(case: Case, inputs: Path, folder: Path, endpoint: str) -> tuple:
    shutil.copytree(inputs, folder)
    before = files_outside_cache(folder)
    cache = folder / CACHE
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "ZOO_")) and key != "HUGGING_FACE_HUB_TOKEN"
    }
    env.update(
        HF_HOME=str(cache / "hf"),
        HF_HUB_CACHE=str(cache / "hf" / "hub"),
        ZOO_CACHE=str(cache / "zoo"),
        HF_ENDPOINT=endpoint,
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        **case.env,
    )
    result = subprocess.run(
        [ZOO, *case.args], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    return result, sorted(files_outside_cache(folder) - before)


def files_outside_cache(folder: Path) -> set[str]:
    return {
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.relative_to(folder).parts[0] != CACHE
    }


def test_there_are_at_least_thirty_wrong_invocations():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_wrong_invocation_fails_with_one_short_line(results, case):
    result, new_files = results[case.id]
    message = result.stderr.strip()

    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    assert len(message.splitlines()) == 1, result.stderr
    assert len(message) <= MAX_MESSAGE, message
    assert case.expect in message
    assert new_files == []
