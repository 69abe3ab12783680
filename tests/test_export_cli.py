"""``zoo export`` end to end, in subprocesses, as a user runs it.

The quick cases export the model of a plugin ``zoo new-plugin`` wrote (a small
image classifier, a third-party plugin installed into a folder of its own) and
the bundled ConvLSTM; every error must
be one line on stderr with a non-zero exit, before any long work where possible.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from zoo.exporters.report import ExportReport

ZOO = str(Path(sys.executable).with_name("zoo"))


def zoo_export(*args: str, site: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    if site is not None:
        environment["PYTHONPATH"] = str(site)
    return subprocess.run(
        [ZOO, "export", *args], capture_output=True, text=True, env=environment, timeout=600
    )


def assert_one_line_error(
    result: subprocess.CompletedProcess, fragment: str, status: int = 1
) -> None:
    assert result.returncode == status, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert fragment in lines[0]


def test_export_writes_a_checked_onnx_folder_quietly(skeleton_site, tmp_path):
    result = zoo_export(
        "demo-net-example", "--onnx", "--random", "-o", str(tmp_path / "out"), site=skeleton_site
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "no progress bar or warning off a terminal"
    assert f"wrote {tmp_path / 'out'}: card.yaml, export.json, model.onnx" in result.stdout
    assert "inputs  image float32[batch, 3, 32, 32]" in result.stdout
    assert "check at other sizes (batch 1): logits max_abs" in result.stdout
    report = ExportReport.model_validate_json((tmp_path / "out" / "export.json").read_text())
    assert report.passed and report.weights == "random"


def test_json_prints_the_report(skeleton_site, tmp_path):
    result = zoo_export(
        "demo-net-example",
        "--random",
        "--static",
        "--json",
        "-o",
        str(tmp_path / "out"),
        site=skeleton_site,
    )

    assert result.returncode == 0, result.stderr
    report = ExportReport.model_validate_json(result.stdout)
    assert report.model == "demo-net-example" and not report.dynamic
    assert report.inputs[0].shape == [1, 3, 32, 32]


def test_triton_adds_each_model_to_the_repository(skeleton_site, tmp_path):
    repo = tmp_path / "models"
    first = zoo_export(
        "demo-net-example", "--random", "--format", "triton", "-o", str(repo), site=skeleton_site
    )
    second = zoo_export("convlstm-moving-digits", "--format", "triton", "-o", str(repo))

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert sorted(path.name for path in repo.iterdir()) == [
        "convlstm-moving-digits",
        "demo-net-example",
    ]
    for name in ("demo-net-example", "convlstm-moving-digits"):
        config = (repo / name / "config.pbtxt").read_text()
        assert text_format.Parse(config, model_config_pb2.ModelConfig()).name == name
        assert (repo / name / "1" / "model.onnx").is_file()
    bundled = json.loads((repo / "convlstm-moving-digits" / "export.json").read_text())
    assert bundled["weights"] == "pretrained"


def test_an_unknown_name_is_one_line_with_suggestions(tmp_path):
    result = zoo_export("c3d-sports1", "-o", str(tmp_path / "out"))

    assert_one_line_error(result, "unknown model 'c3d-sports1'; did you mean 'c3d-sports1m'")
    assert not (tmp_path / "out").exists()


def test_weights_unavailable_offline_suggest_random_or_a_file(tmp_path):
    result = zoo_export(
        "resnet50.tv_in1k",
        "-o",
        str(tmp_path / "out"),
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(tmp_path / "hub"),
        ZOO_CACHE=str(tmp_path / "zoo"),
    )

    assert_one_line_error(result, "is not in the local cache and HF_HUB_OFFLINE is set")
    assert "HF_HUB_OFFLINE is set" in result.stderr
    assert "--random" in result.stderr and "--weights FILE" in result.stderr
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.glob(".*partial")) == []


def test_an_unwritable_output_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("")

    result = zoo_export("c3d-sports1m", "--random", "-o", str(tmp_path / "a-file" / "out"))

    assert_one_line_error(result, "cannot write")


def test_a_clip_shorter_than_the_network_takes_is_refused(tmp_path):
    result = zoo_export(
        "i3d-kinetics400-rgb", "--random", "--frames", "4", "-o", str(tmp_path / "o")
    )

    assert_one_line_error(result, "4 frames is below the 9 frames the i3d network accepts")


def test_a_non_empty_output_folder_needs_force(skeleton_site, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    args = ("demo-net-example", "--random", "-o", str(tmp_path / "out"))

    refused = zoo_export(*args, site=skeleton_site)
    forced = zoo_export(*args, "--force", site=skeleton_site)

    assert_one_line_error(refused, "is not empty and not a previous zoo output")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_random_and_weights_exclude_each_other(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"")

    result = zoo_export(
        "c3d", "--random", "--weights", str(tmp_path / "w.safetensors"), "-o", str(tmp_path / "o")
    )

    assert_one_line_error(result, "--random and --weights contradict each other", status=2)
