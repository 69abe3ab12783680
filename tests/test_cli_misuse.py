"""Wrong invocations of the ``zoo`` command: each must fail with ONE short line on stderr.

Every one must exit non-zero with one line on stderr, no traceback, and leave the
files around it as they were. Each runs in a fresh copy of the same input folder with
private caches; nothing reaches the internet (the Hub endpoint is a loopback port that
refuses connections). The older commands' cases run the real console script, each in a
subprocess of its own, four at a time; the newer commands' cases (predict, explain,
attack, export, card render and validate, new-plugin, cache, bench, embed) run in this
process through click's runner, where torch is imported once.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

import zoo
from zoo import publish
from zoo.cli import main
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
    status: int = 1  # checked for the newer commands' cases (2: a usage error)


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


def newer(id: str, args: str | list[str], expect: str, status: int = 1) -> Case:
    """A newer command's case: arguments split on spaces (or given as a list), exit status."""
    return Case(id, tuple(args.split() if isinstance(args, str) else args), expect, {}, status)


LONG_NAME = "n" * 300
NEWER_CASES = [
    newer("predict-dash-file", ["predict", "c3d", "-dash.gif"], "put `--` before it", status=2),
    newer("predict-threshold-nan", "predict detr photo.png --threshold nan",
          "'nan' is not a finite number", status=2),
    newer("predict-clips-forecaster", "predict convlstm-moving-digits digits.gif --clips 3",
         "--clips sets how many clips (or frames) are averaged, and convlstm-moving-digits is a "
         "video model that sees the last 10 frames"),
    newer("predict-clips-whole-video", "predict i3d-kinetics400-rgb digits.gif --random --clips 2",
         "is a video model that sees the whole video as one clip; drop --clips"),
    newer("predict-onnx-on-torch", "predict c3d digits.gif --backend torch --onnx model.onnx",
         "--onnx names a file for an ONNX --backend (onnxruntime, openvino), not torch"),
    newer("predict-memory-format-on-onnxruntime",
         "predict c3d digits.gif --random --backend onnxruntime --memory-format channels_last",
         "--memory-format sets how PyTorch runs the model; onnxruntime runs the exported graph"),
    newer("predict-compile-on-onnxruntime", "predict c3d x.gif --random --backend onnxruntime "
         "--compile", "--compile sets how PyTorch runs the model"),
    newer("predict-huge-image", "predict convlstm-moving-digits huge.png --backend torch",
         "huge.png: is too large to decode safely (Pillow: Image size (225000000 pixels) exceeds "
         "limit of 178956970 pixels"),
    newer("predict-gif-over-users-file",
         "predict convlstm-moving-digits digits.gif --backend torch -o gifs --force",
         "gifs/digits.forecast.gif exists and zoo did not write it"),
    newer("predict-gifs-into-users-folder",
         "predict convlstm-moving-digits digits.gif --backend torch -o mine",
         "mine is not empty and not a previous zoo output"),
    newer("predict-topk-zero", "predict c3d x.gif --topk 0",
         "0 is not in the range x>=1", status=2),
    newer("predict-batch-size-zero", "predict c3d x.gif --batch-size 0",
         "not in the range x>=1", status=2),
    newer("explain-target-out-of-range",
         "explain resnet50.tv_in1k photo.png --random --target 5000 -o out",
         "target class 5000 is out of range (0 to 999)"),
    newer("explain-window-larger-than-input",
         "explain convlstm-moving-digits digits.gif --method occlusion --window 1000 -o out",
         "the occlusion --window 1000x1000x1000 is larger than the input, which is 4x32x32 (THW)"),
    newer("explain-baseline-for-gradcam", "explain c3d digits.gif --random --baseline 0.2 -o out",
         "--baseline belongs to --method occlusion, not gradcam"),
    newer("explain-layer-for-occlusion",
         "explain c3d digits.gif --random --method occlusion --layer conv1 -o out",
         "--layer belongs to --method gradcam, not occlusion"),
    newer("explain-baseline-nan", "explain c3d digits.gif --method occlusion --baseline nan -o o",
         "'nan' is not a finite number", status=2),
    newer("explain-into-users-folder", "explain c3d digits.gif --random -o mine",
         "mine is not empty and not a previous zoo output (it holds README.md, notes.txt)"),
    newer("explain-force-over-users-picture",
         "explain resnet50.tv_in1k photo.png --random -o pictures --force",
         "pictures/gradcam.png exists and zoo did not write it"),
    newer("attack-fgsm-step-size", "attack c3d digits.gif --random --step-size 0.1 -o out",
         "--step-size belongs to --method pgd, not fgsm"),
    newer("attack-fgsm-steps", "attack c3d digits.gif --random --method fgsm --steps 5 -o out",
         "--steps belongs to --method pgd, not fgsm"),
    newer("attack-eps-nan", "attack c3d digits.gif --eps nan -o out",
         "'nan' is not a finite", status=2),
    newer("attack-eps-inf", "attack c3d digits.gif --eps inf -o out",
         "'inf' is not a finite", status=2),
    newer("attack-step-size-inf", "attack c3d digits.gif --method pgd --step-size inf -o out",
         "'inf' is not a finite number", status=2),
    newer("attack-target-out-of-range", "attack c3d digits.gif --random --target 487 -o out",
         "target class 487 is out of range (0 to 486)"),
    newer("export-opset-99", "export c3d --random --opset 99 -o out",
         "--opset 99 is not an opset zoo can export to"),
    newer("export-opset-6", "export c3d --random --opset 6 -o out",
         "6 is not in the range x>=7", status=2),
    newer("export-into-users-folder", "export c3d --random -o mine",
         "mine is not empty and not a previous zoo output"),
    newer("export-force-over-users-model", "export c3d --random -o onnx-out --force",
         "onnx-out/model.onnx exists and zoo did not write it"),
    newer("render-over-users-readme", "card render c3d -o mine/",
         "mine/README.md exists and zoo did not write it"),
    newer("render-force-over-users-readme", "card render c3d -o mine/ --force",
         "not even with --force"),
    newer("validate-key-twice", "card validate twice.yaml", "1 of 1 cards are invalid"),
    newer("validate-wrong-parameters", "card validate parameters.yaml", "1 of 1 cards are invalid"),
    newer("new-plugin-keyword-none", "new-plugin none -o x", "makes the model class name 'None'"),
    newer("new-plugin-keyword-false", "new-plugin false -o x", "a Python keyword"),
    newer("new-plugin-parent-is-a-file", "new-plugin my-net -o file.txt/x",
         "cannot write file.txt/x: Not a directory"),
    newer("new-plugin-proc", "new-plugin my-net -o /proc/zoo-misuse", "cannot write /proc/zoo"),
    newer("new-plugin-unwritable", f"new-plugin my-net -o {UNWRITABLE}/x",
         f"cannot write {UNWRITABLE}/x"),
    newer("new-plugin-name-too-long", f"new-plugin my-net -o {LONG_NAME}", "File name too long"),
    newer("new-plugin-over-users-readme", "new-plugin my-net -o mine --force",
         "mine/README.md exists and zoo did not write it"),
    newer("bench-compare-and-backend", "bench c3d --compare --backend torch",
         "--compare runs every variant; drop --backend", status=2),
    newer("embed-nothing-to-do", "embed c3d digits.gif --random", "nothing to do: give -o FILE"),
]  # fmt: skip


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
    newer_command_inputs(folder)
    return folder


def newer_command_inputs(folder: Path) -> None:
    """Media, cards and folders holding a user's files of the names zoo writes."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / "photo.png")
    frames = [Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)) for _ in range(4)]
    frames[0].save(folder / "digits.gif", save_all=True, append_images=frames[1:], loop=0)
    shutil.copy(folder / "digits.gif", folder / "-dash.gif")
    shutil.copy(folder / "digits.gif", folder / "x.gif")
    (folder / "huge.png").write_bytes(png_declaring(15000, 15000))
    (folder / "model.onnx").write_bytes(b"not a graph")
    card = zoo.card("c3d").to_data() | {"name": "c3d-edited", "aliases": []}
    (folder / "twice.yaml").write_text(yaml.safe_dump(card) + "license: mit\n")
    (folder / "parameters.yaml").write_text(yaml.safe_dump(card | {"parameters": 5}))
    for user_file in ("gifs/digits.forecast.gif", "pictures/gradcam.png", "onnx-out/model.onnx"):
        (folder / user_file).parent.mkdir()
        (folder / user_file).write_text("mine\n")


def png_declaring(width: int, height: int) -> bytes:
    """A PNG header declaring ``width`` x ``height`` pixels, and no pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


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


def test_there_are_at_least_thirty_wrong_invocations_of_old_and_of_newer_commands():
    assert len(CASES) >= 30 and len(NEWER_CASES) >= 30
    every = [case.id for case in [*CASES, *NEWER_CASES]]
    assert len(set(every)) == len(every)


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


def everything_in(folder: Path) -> dict[str, bytes | None]:
    """Every file (with its contents) and folder below ``folder``."""
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
        for path in folder.rglob("*")
    }


@pytest.mark.parametrize("case", NEWER_CASES, ids=lambda case: case.id)
def test_a_wrong_invocation_of_a_newer_command_fails_with_one_short_line_in_process(
    case, inputs, tmp_path, monkeypatch
):
    folder = tmp_path / "case"
    shutil.copytree(inputs, folder)
    monkeypatch.chdir(folder)
    before = everything_in(folder)

    result = CliRunner().invoke(main, list(case.args))
    message = result.stderr.strip()

    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback: the bug this test is for
    assert result.exit_code == case.status, result.output
    assert len(message.splitlines()) == 1, result.stderr
    assert len(message) <= MAX_MESSAGE, message
    assert case.expect in message
    assert everything_in(folder) == before
