"""zoo.testing catches broken plugins: each is a real installed distribution run through pytest.

A small, correct plugin (``kit-toy``) is broken one way at a time (torch imported at
the top, a card with the wrong parameter count, a forward returning the wrong shape)
and laid out as an installed distribution in pytester's folder. A test file that calls
``zoo.testing`` as a plugin author would is then run by pytest: exactly the broken
contract must fail, and every other check must pass.

The runs are in-process, for speed. pytester forgets the modules a run imported, and
torch cannot be imported twice in one process, so one kit run in this process first
(``kit_modules_loaded``) loads every module the checks use before pytester's runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys

import pytest
from conftest import install_distribution

import zoo
from zoo.registry import Registry
from zoo.testing import CHECK_NAMES, PluginCheckError, check_plugin, plugin_checks

pytest_plugins = ["pytester"]

PLUGIN = """
{extra_import}
from pydantic import BaseModel, ConfigDict

import zoo


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int{width_default}
    num_classes: int = 3


CARD = {{
    "name": "kit-toy-small",
    "architecture": "kit-toy",
    "task": "image-classification",
    "summary": "A toy classifier for the conformance kit's own tests.",
    "inputs": [{{"name": "image", "layout": "NCHW", "channels": 3, "size": [8, 8]}}],
    "outputs": [{{"name": "logits", "shape": [3]}}],
    "labels": ["a", "b", "c"],
    "parameters": {parameters},
    "license": "mit",
    "config": {{"width": 4}},
}}


@zoo.hookimpl
def zoo_architectures():
    return [
        zoo.Architecture(
            name="kit-toy",
            builder="kit_toy_model:build",
            config=ToyConfig,
            converters={{"upstream": "kit_toy_model:from_upstream"}},
            converter_examples={{"upstream": "kit_toy_model:upstream_state"}},
            export=zoo.ExportHints(
                output_names=["logits"],
                dynamic_axes={{"image": {{0: "batch"}}, "logits": {{0: "batch"}}}},
            ),
            test_config={{"width": 2}},
            expected_failures={expected_failures},
        )
    ]


@zoo.hookimpl
def zoo_cards():
    return [CARD]
"""

MODEL = """
from torch import nn


class Toy(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.conv = nn.Conv2d(3, config.width, 3, padding=1)
        self.fc = nn.Linear(config.width, config.num_classes)

    def forward(self, image):
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W), found {{tuple(image.shape)}}")
        logits = self.fc(self.conv(image).mean(dim=(2, 3)))
        return logits{slicing}


def build(config):
    return Toy(config)


def from_upstream(state, config):
    return {{key.removeprefix("net."): value for key, value in state.items()}}


def upstream_state(config):
    return {{f"net.{{key}}": value for key, value in Toy(config).state_dict().items()}}
"""

CHECKS_FILE = """
import pytest

from zoo.testing import plugin_checks


@pytest.mark.parametrize(("item", "check"), plugin_checks("kit-toy"), ids=str)
def test_the_plugin_keeps_the_zoo_contract(item, check):
    check(item)
"""

TOY_PARAMETERS = 3 * 4 * 9 + 4 + 4 * 3 + 3
#: 3 of the plugin, 3 of its architecture, 6 of its card (7 where OpenVINO is installed)
TOY_CHECKS = 12 + (importlib.util.find_spec("openvino") is not None)


def toy_sources(
    *,
    torch_at_top: bool = False,
    parameters: int = TOY_PARAMETERS,
    forward_drops_a_class: bool = False,
    expected_failures: dict[str, str] | None = None,
    width_required: bool = False,
) -> dict[str, str]:
    plugin = PLUGIN.format(
        width_default="" if width_required else " = 4",
        extra_import="import torch  # the mistake: every `zoo list` now pays for torch"
        if torch_at_top
        else "",
        parameters=parameters,
        expected_failures=expected_failures or {},
    )
    model = MODEL.format(slicing="[:, :-1]" if forward_drops_a_class else "")
    return {"kit_toy": plugin, "kit_toy_model": model}


@pytest.fixture(scope="module")
def kit_modules_loaded(tmp_path_factory):
    """Run the kit once in this process, so pytester's in-process runs import nothing new."""
    folder = tmp_path_factory.mktemp("warm-up")
    for module, source in toy_sources().items():
        (folder / f"{module}.py").write_text(source.replace("kit_toy_model", "warm_model"))
    (folder / "kit_toy.py").rename(folder / "warm_plugin.py")
    (folder / "kit_toy_model.py").rename(folder / "warm_model.py")
    sys.path.insert(0, str(folder))
    try:
        registry = Registry.from_plugins({"warm": importlib.import_module("warm_plugin")})
        check_plugin("warm", registry=registry)
    finally:
        sys.path.remove(str(folder))


@pytest.fixture
def run_kit(pytester: pytest.Pytester, kit_modules_loaded):
    """Install a kit-toy variant in pytester's folder and run the author's test file on it."""

    def run(*arguments: str, **variant) -> pytest.RunResult:
        install_distribution(
            pytester.path, "kit-toy", {"kit-toy": "kit_toy"}, toy_sources(**variant)
        )
        pytester.makepyfile(test_kit_toy=CHECKS_FILE)
        pytester.syspathinsert()
        return pytester.runpytest("-p", "no:cacheprovider", "-rfExX", *arguments)

    return run


def output(result: pytest.RunResult) -> str:
    return result.stdout.str()


def failed_ids(result: pytest.RunResult) -> list[str]:
    return [report.nodeid.split("::", 1)[1] for report in result.reprec.getfailures()]


def test_a_correct_plugin_passes_every_check(run_kit):
    result = run_kit()

    result.assert_outcomes(passed=TOY_CHECKS)


def test_a_plugin_importing_torch_at_the_top_fails_only_that_check_and_names_the_line(run_kit):
    result = run_kit(torch_at_top=True)

    result.assert_outcomes(passed=TOY_CHECKS - 1, failed=1)
    assert failed_ids(result) == [
        "test_the_plugin_keeps_the_zoo_contract[kit-toy-imports_without_torch]"
    ]
    result.stdout.fnmatch_lines(["*imported torch, first at *kit_toy.py:2 (import torch*"])


# The remaining runs leave out the import check (a subprocess each): the two above prove it.
def test_a_card_with_the_wrong_parameter_count_fails_that_check(run_kit):
    result = run_kit("-k", "not imports_without_torch", parameters=TOY_PARAMETERS + 1)

    result.assert_outcomes(passed=TOY_CHECKS - 2, failed=1)
    assert failed_ids(result) == [
        "test_the_plugin_keeps_the_zoo_contract[kit-toy/kit-toy-small-parameters_match_card]"
    ]
    assert f"says {TOY_PARAMETERS + 1} parameters, its config builds 127 (-1)" in output(result)


def test_a_forward_returning_the_wrong_shape_fails_that_check(run_kit):
    result = run_kit("-k", "not imports_without_torch", forward_drops_a_class=True)

    result.assert_outcomes(passed=TOY_CHECKS - 2, failed=1)
    assert failed_ids(result) == [
        "test_the_plugin_keeps_the_zoo_contract[kit-toy/kit-toy-small-forward_matches_card]"
    ]
    assert "logits: per-sample shape (2,), the card says [3]" in output(result)


def test_a_declared_expected_failure_is_reported_as_xfail_with_its_reason(run_kit):
    reason = "the toy drops its last class on purpose"
    result = run_kit(
        "-k",
        "forward_matches_card",
        forward_drops_a_class=True,
        expected_failures={"forward_matches_card": reason},
    )

    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines([f"XFAIL *forward_matches_card* - {reason} (ContractError: *"])


def test_an_expected_failure_that_passes_is_an_error_not_a_silent_pass(run_kit):
    result = run_kit(
        "-k", "forward_matches_card", expected_failures={"forward_matches_card": "broken once"}
    )

    result.assert_outcomes(failed=1)
    assert "forward_matches_card passes, but the architecture declares it" in output(result)


def test_an_unknown_check_in_expected_failures_is_named(run_kit):
    result = run_kit(
        "-k", "declarations_resolve", expected_failures={"forward_is_fast": "no reason"}
    )

    result.assert_outcomes(failed=1)
    assert "expected_failures names no check: 'forward_is_fast'" in output(result)


@pytest.fixture
def toy_registry(tmp_path, monkeypatch):
    """A registry of one kit-toy variant, imported in this process from ``tmp_path``."""
    modules = ("kit_toy", "kit_toy_model")

    def make(**variant) -> Registry:
        for module, source in toy_sources(**variant).items():
            (tmp_path / f"{module}.py").write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
        for module in modules:
            monkeypatch.delitem(sys.modules, module, raising=False)
        return Registry.from_plugins({"kit-toy": importlib.import_module("kit_toy")})

    yield make
    for module in modules:
        sys.modules.pop(module, None)


def test_check_plugin_raises_one_error_listing_every_failure(toy_registry):
    registry = toy_registry(parameters=TOY_PARAMETERS + 1, forward_drops_a_class=True)

    with pytest.raises(PluginCheckError) as caught:
        check_plugin("kit-toy", registry=registry)

    lines = str(caught.value).splitlines()
    assert lines[0] == f"plugin 'kit-toy' fails 2 of {TOY_CHECKS} checks:"
    assert [line.split(":", 1)[0] for line in lines[1:]] == [
        "kit-toy/kit-toy-small parameters_match_card",
        "kit-toy/kit-toy-small forward_matches_card",
    ]


def test_check_plugin_returns_a_typed_report_printable_as_json(toy_registry):
    report = check_plugin("kit-toy", registry=toy_registry())

    data = json.loads(report.model_dump_json())
    assert [result["check"] for result in data["results"]] == list(CHECK_NAMES)
    assert {result["status"] for result in data["results"]} == {"passed"}


def test_an_architecture_without_a_default_config_is_checked_at_its_cards_config(toy_registry):
    # A video model around a named image backbone has no sensible default backbone.
    report = check_plugin("kit-toy", registry=toy_registry(width_required=True))

    assert {result.status for result in report.results} == {"passed"}


def test_a_plugin_that_fails_to_register_still_yields_checks_that_fail(tmp_path, monkeypatch):
    (tmp_path / "kit_raising.py").write_text(
        "import zoo\n\n@zoo.hookimpl\ndef zoo_cards():\n    raise RuntimeError('no cards today')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import kit_raising

    with pytest.warns(zoo.ZooPluginWarning):
        registry = Registry.from_plugins({"raising": kit_raising})
    results = {
        check.name: check.run(item) for item, check in plugin_checks("raising", registry=registry)
    }

    assert results["registers_cleanly"].status == "failed"
    assert (
        "hook zoo_cards raised RuntimeError: no cards today" in results["registers_cleanly"].message
    )


def test_an_unknown_plugin_name_is_refused_with_suggestions(toy_registry):
    with pytest.raises(
        zoo.UnknownNameError, match="unknown plugin 'kit-tyo'; did you mean 'kit-toy'"
    ):
        list(plugin_checks("kit-tyo", registry=toy_registry()))


def test_an_exported_graph_with_other_names_or_a_fixed_open_axis_is_named(toy_registry, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from zoo.conformance.models import _graph_problems
    from zoo.testing import CardItem

    registry = toy_registry()
    item = next(
        item
        for item, _ in plugin_checks("kit-toy", registry=registry)
        if isinstance(item, CardItem)
    )
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["scores"])],
        "renamed",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [2, 3, 8, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [2, 3, 8, 8])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "model.onnx")

    assert _graph_problems(tmp_path / "model.onnx", item.card, item) == [
        "gives outputs ['scores'], ExportHints names ['logits']",
        "fixes axis 0 of image that ExportHints.dynamic_axes opens",
    ]
