"""A third-party plugin works where the built-in ones do, installed by pip into a fresh venv.

The example package (R(2+1)D-18), two deliberately broken copies of it (an invalid
card, an import error) and a skeleton written by ``zoo new-plugin`` are installed
with a plain ``pip install`` (not editable) into one fresh virtual environment,
which borrows this environment's packages so that the installs run offline in
seconds (:class:`conftest.FreshVenv`). The zoo is then used as its users use it:
``zoo list``, ``plugins``, ``info``, ``predict``, ``export``, ``new-plugin`` and
``python -m pytest``, in subprocesses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXAMPLE_PLUGIN, ROOT, FreshVenv, clean_copy

from zoo.exporters.report import ExportReport
from zoo.registry import Registry

EXAMPLE_CARD = "r2plus1d-18-kinetics400"
BUILT_IN_CARDS = [card.name for card in Registry.from_entry_points().cards()]
BREAKAGES = {
    "bad-card": ("cards/r2plus1d-18-kinetics400.yaml", "frames: 16", "frames: 0"),
    "import-error": (
        "__init__.py",
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nimport not_a_module\n",
    ),
}


def broken_copy(folder: Path, breakage: str) -> Path:
    """The example, renamed throughout (so it collides with nothing), then broken one way."""
    module = f"zoo_example_{breakage.replace('-', '_')}"
    package = clean_copy(EXAMPLE_PLUGIN, folder)
    (package / "zoo_example_plugin").rename(package / module)
    for path in package.rglob("*"):
        if path.suffix in (".py", ".toml", ".yaml", ".md"):
            text = path.read_text(encoding="utf-8")
            text = text.replace("zoo_example_plugin", module)
            text = text.replace("zoo-example-plugin", f"zoo-example-{breakage}")
            path.write_text(text.replace("r2plus1d", f"r2plus1d-{breakage}"), encoding="utf-8")
    file, old, new = BREAKAGES[breakage]
    broken = package / module / file
    broken.write_text(broken.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    return package


@pytest.fixture(scope="session")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    """A fresh venv holding the example and its two broken copies, installed by pip."""
    folder = tmp_path_factory.mktemp("third-party")
    venv = FreshVenv.create(folder)
    packages = [clean_copy(EXAMPLE_PLUGIN, folder / "example")]
    packages += [broken_copy(folder / breakage, breakage) for breakage in BREAKAGES]
    result = venv.run("pip", "install", "--quiet", *map(str, packages))
    assert result.returncode == 0, result.stderr
    return venv


def zoo_json(venv: FreshVenv, *arguments: str) -> tuple[object, str]:
    result = venv.run("zoo", *arguments, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_zoo_plugins_shows_the_example_with_its_distribution_and_version(plugin_venv):
    reports, _ = zoo_json(plugin_venv, "plugins")
    example = next(report for report in reports if report["name"] == "r2plus1d")

    assert example["status"] == "loaded"
    assert (example["distribution"], example["version"]) == ("zoo-example-plugin", "0.2.0")
    assert example["architectures"] == ["r2plus1d"]
    assert example["cards"] == [EXAMPLE_CARD]
    assert example["errors"] == []


def test_zoo_list_shows_the_examples_card_beside_every_built_in_one(plugin_venv):
    rows, _ = zoo_json(plugin_venv, "list")
    names = [row["name"] for row in rows]

    assert EXAMPLE_CARD in names
    assert set(BUILT_IN_CARDS) <= set(names)
    assert next(row for row in rows if row["name"] == EXAMPLE_CARD)["parameters"] == 31_505_325


def test_broken_copies_show_in_zoo_plugins_and_everything_else_keeps_working(plugin_venv):
    reports, warnings = zoo_json(plugin_venv, "plugins")
    by_name = {report["name"]: report for report in reports}
    info = plugin_venv.run("zoo", "info", "r2plus1d-18", "--json")

    bad_card = by_name["r2plus1d-bad-card"]
    assert bad_card["status"] == "loaded"
    assert bad_card["distribution"] == "zoo-example-bad-card"
    assert bad_card["architectures"] == ["r2plus1d-bad-card"] and bad_card["cards"] == []
    assert "inputs.0.frames: Input should be greater than or equal to 1" in bad_card["errors"][0]
    import_error = by_name["r2plus1d-import-error"]
    assert import_error["status"] == "failed"
    assert import_error["errors"] == [
        "import failed: ModuleNotFoundError: No module named 'not_a_module'"
    ]
    assert "warning: zoo plugin 'r2plus1d-bad-card': invalid card" in warnings
    assert "warning: zoo plugin 'r2plus1d-import-error': import failed" in warnings
    assert all(report["errors"] == [] for name, report in by_name.items() if "-" not in name)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["name"] == EXAMPLE_CARD


def test_zoo_predict_classifies_a_clip_with_the_example(plugin_venv):
    clip = ROOT / "tests" / "data" / "v_CricketShot_g04_c01_rgb.gif"

    result = plugin_venv.run("zoo", "predict", "r2plus1d-18", str(clip), "--random", "--json")

    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout)
    assert (prediction["model"], prediction["task"]) == (EXAMPLE_CARD, "video-classification")
    assert prediction["clips"] == 5  # the card's test-time protocol: 5 clips averaged
    assert len(prediction["predictions"]) == 5
    assert all(0.0 <= label["score"] <= 1.0 for label in prediction["predictions"])


def test_a_new_plugin_skeleton_installs_and_passes_the_kit_as_written(plugin_venv):
    written = plugin_venv.run("zoo", "new-plugin", "kit-skeleton", "-o", "zoo-kit-skeleton")
    installed = plugin_venv.run("pip", "install", "--quiet", "./zoo-kit-skeleton")
    tests = plugin_venv.run(
        "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "zoo-kit-skeleton/tests"
    )
    reports, _ = zoo_json(plugin_venv, "plugins")

    assert written.returncode == 0, written.stderr
    assert installed.returncode == 0, installed.stderr
    assert tests.returncode == 0, tests.stdout
    assert "13 passed" in tests.stdout
    skeleton = next(report for report in reports if report["name"] == "kit-skeleton")
    assert (skeleton["distribution"], skeleton["status"]) == ("zoo-kit-skeleton", "loaded")
    assert skeleton["cards"] == ["kit-skeleton-example"]


@pytest.mark.heavy
def test_zoo_export_writes_the_examples_checked_onnx_file(plugin_venv):
    """The card's whole R(2+1)D-18 (31.5M parameters) on 4-frame clips: about half a minute."""
    result = plugin_venv.run(
        "zoo", "export", "r2plus1d-18", "--random", "--frames", "4", "--json", "-o", "onnx"
    )

    assert result.returncode == 0, result.stderr
    report = ExportReport.model_validate_json(result.stdout)
    assert report.passed and report.model == EXAMPLE_CARD
    assert [tensor.shape for tensor in report.inputs] == [["batch", 3, "frames", "height", "width"]]
    assert {check.input_shapes["video"][0] for check in report.checks} == {1, 2}
    assert (plugin_venv.home / "onnx" / "model.onnx").is_file()


@pytest.mark.heavy
def test_the_example_packages_own_tests_pass_where_it_is_installed(plugin_venv):
    """Its conformance kit run and its parity tests against torchvision (about a minute)."""
    tests = plugin_venv.home.parent / "example" / EXAMPLE_PLUGIN.name / "tests"
    result = plugin_venv.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests))

    assert result.returncode == 0, result.stdout[-3000:]
    assert "19 passed" in result.stdout
