"""Every shell command in the README, CONTRIBUTING.md and the documentation site runs, as written.

Each ``console`` block's ``$ `` commands run with bash, one after another, in a
fresh virtual environment (:class:`conftest.FreshVenv`) and a sandbox folder, or in
the repository root where the block is marked ``<!-- runs in the repository root -->``.
A block marked ``<!-- parsed, not run, ... -->`` (full-size exports and predictions,
minutes each; ``tests/test_export.py`` and the CLI tests run them at a small size) runs
each command with ``--help`` appended instead: the command and every option name must
exist, though option values are not checked. A benchmark script's options are read from
its ``add_argument`` calls instead (its imports alone take seconds). A parsed block
runs in the repository root when its marker says ``in the repository root``.
The network is stood in for, never reached:

- the Hub is the loopback server of ``tests/hub_server.py`` (``HF_ENDPOINT``), which
  takes any token (``HF_TOKEN``);
- the pretrained weights of every model a command names are random tensors in the
  card's upstream layout (the plugin's converter example at the card's config): a
  commit in the loopback Hub for a Hub repo, a local file served in place of the
  download for a URL (``zoo_test_urls``, below), so conversion and caching run for real;
- files a command reads (a checkpoint, a folder of cards) are made by ``FILES``.

Two commands cannot run inside a test as written; ``REWRITES`` says how each is
checked instead and why. A stand-in or rewrite that no command uses is an error too,
so these tables cannot go stale either.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT, FreshVenv
from hub_server import LoopbackHub

from zoo.architecture import import_string
from zoo.cards import Card
from zoo.registry import Registry

ROOT_MARKER = "<!-- runs in the repository root -->"
PARSE_MARKER = "<!-- parsed, not run, by the docs test"
DOCUMENTS = sorted(
    ["README.md", "CONTRIBUTING.md"]
    + [str(path.relative_to(ROOT)) for path in (ROOT / "docs").rglob("*.md")]
)
# What a document's commands leave behind, checked after they ran (the command is run
# with a stand-in; these prove it did its work, not just exit 0).
MADE = {
    "docs/concepts/cards.md": ["out/README.md"],
    "docs/tasks/load.md": ["c3d/model.safetensors"],
    "docs/plugins/guide.md": ["my-net-weights/model.safetensors", "zoo-my-net/pyproject.toml"],
}
REGISTRY = Registry.from_entry_points()
# Put into the fresh venv: downloads of the URLs in $ZOO_TEST_URLS come from local files.
URL_STAND_IN = '''"""Test stand-in for the network (tests/test_docs_commands.py)."""
import json
import os
import shutil

URLS = json.loads(os.environ.get("ZOO_TEST_URLS") or "{}")
if URLS:
    import huggingface_hub.file_download as file_download

    def http_get(url, temp_file, **options):
        if url not in URLS:
            raise OSError(f"no stand-in for {url}: the docs test reaches no network")
        with open(URLS[url], "rb") as source:
            shutil.copyfileobj(source, temp_file)

    file_download.http_get = http_get
'''


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    commands: list[str]
    in_root: bool = False
    parsed_only: bool = False

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


@dataclass
class Sandbox:
    venv: FreshVenv
    hub: LoopbackHub
    folder: Path
    urls: dict[str, str] = field(default_factory=dict)

    def run(self, command: str, block: Block) -> subprocess.CompletedProcess:
        return self.venv.run(
            "bash",
            "-c",
            command,
            cwd=ROOT if block.in_root else self.folder,
            HF_ENDPOINT=self.hub.endpoint,
            HF_HUB_OFFLINE="0",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_TOKEN="hf_loopback",  # publishing needs a token; the loopback Hub takes any
            ZOO_TEST_URLS=json.dumps(self.urls),
        )


def console_blocks(document: str) -> list[Block]:
    """The ``console`` blocks of a document."""
    lines = (ROOT / document).read_text(encoding="utf-8").splitlines()
    start, end = 0, len(lines)
    blocks, index = [], start
    while index < end:
        fence = lines[index].strip()
        if not fence.startswith("```"):
            index += 1
            continue
        closing = next(i for i in range(index + 1, end) if lines[i].strip().startswith("```"))
        body = [line.strip() for line in lines[index + 1 : closing]]
        if fence[3:].strip() == "console":
            marker = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
            commands = [line[2:] for line in body if line.startswith("$ ")]
            parsed_only = marker.startswith(PARSE_MARKER)
            in_root = marker == ROOT_MARKER or (parsed_only and "in the repository root" in marker)
            blocks.append(Block(document, index + 1, commands, in_root, parsed_only))
        index = closing + 1
    return blocks


def shell_fences(document: str) -> list[str]:
    text = (ROOT / document).read_text(encoding="utf-8")
    return re.findall(r"^\s*```(bash|sh|shell|zsh)\s*$", text, flags=re.MULTILINE)


# --- what stands in for the network and for your files ----------------------------------


def c3d_checkpoint(sandbox: Sandbox) -> None:
    """The C3D port's c3d.pickle (a 300 MB download): random weights in its layout."""
    card = REGISTRY.card("c3d-sports1m")
    stand_in_weights(sandbox, card)
    shutil.copy(download(sandbox, card, 0), sandbox.folder / "c3d.pickle")


def own_cards(sandbox: Sandbox) -> None:
    """Cards of your own: copies of the built-in I3D cards."""
    (sandbox.folder / "my-cards").mkdir()
    for card in (ROOT / "cards" / "i3d").glob("*.yaml"):
        shutil.copy(card, sandbox.folder / "my-cards" / card.name)


def plugin_checkpoint(sandbox: Sandbox) -> None:
    """The checkpoint a new plugin's weights come in: the skeleton's own converter example."""
    script = (
        "from safetensors.torch import save_file\n"
        "from zoo_my_net import MyNetConfig\n"
        "from zoo_my_net.convert import upstream_example\n"
        "save_file(upstream_example(MyNetConfig()), 'upstream.safetensors')\n"
    )
    result = sandbox.venv.run("python", "-c", script, cwd=sandbox.folder)
    assert result.returncode == 0, result.stderr


FILES: dict[str, Callable[[Sandbox], None]] = {
    "c3d.pickle": c3d_checkpoint,
    "my-cards/": own_cards,
    "upstream.safetensors": plugin_checkpoint,
}
REWRITES: dict[str, tuple[str, str]] = {
    # command as written: (command run instead, why)
    "bash scripts/setup.sh": (
        "bash -n scripts/setup.sh",
        "it installs from PyPI; the test checks that the script is there and parses",
    ),
    "bash scripts/setup.sh && .venv/bin/zoo list && .venv/bin/zoo info i3d-kinetics": (
        "bash -n scripts/setup.sh && .venv/bin/zoo list && .venv/bin/zoo info i3d-kinetics",
        "the set-up installs from PyPI; the script must parse, and the main job runs",
    ),
    ".venv/bin/mypy": (
        ".venv/bin/mypy --version",
        ".ci/run type-checks zoo/ as a step of its own; the command must exist",
    ),
    ".venv/bin/mkdocs build --strict": (
        ".venv/bin/mkdocs build --help",
        ".ci/run builds the site as a step of its own; the command must exist",
    ),
    ".venv/bin/python -m pytest": (
        ".venv/bin/python -m pytest --collect-only -q tests/test_cli.py",
        "this test is part of that run; collecting one module checks the command and options",
    ),
    '.venv/bin/python -m pytest -m "heavy or not heavy" -n 2': (
        '.venv/bin/python -m pytest -m "heavy or not heavy" -n 2 '
        "--collect-only -q tests/test_cli.py",
        "this test is part of that run; collecting one module checks the options and markers",
    ),
}


def save_upstream_weights(card: Card, part_index: int, path: Path) -> None:
    """Random tensors for one weights part, in its upstream layout, at the card's config."""
    import torch
    from safetensors.torch import save_file

    architecture = REGISTRY.architecture(card.architecture)
    part = card.weights[part_index]
    config = architecture.validate_config(card.config)
    if part.layout == "zoo":
        state = architecture.resolve_builder()(config).state_dict()
    else:
        example = import_string(architecture.converter_examples[part.layout])(config)
        state = example[1] if isinstance(example, tuple) else example
        if part.prefix:  # one part of a model of parts: its own keys, without the prefix
            state = {
                key.removeprefix(part.prefix): value
                for key, value in state.items()
                if key.startswith(part.prefix)
            }
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.contiguous() for key, value in state.items()}
    if part.format == "pickle":
        torch.save(state, path)
    else:
        save_file(state, path)


def stand_in_weights(sandbox: Sandbox, card: Card) -> None:
    """Every weights part of ``card``: a loopback Hub commit, or a local file for its URL."""
    for index, part in enumerate(card.weights):
        path = download(sandbox, card, index)
        if path.exists():
            continue
        save_upstream_weights(card, index, path)
        if part.repo_id is not None:
            sandbox.hub.commit(part.repo_id, {part.filename: path.read_bytes()})
        elif part.url is not None:
            sandbox.urls[part.url] = str(path)


def download(sandbox: Sandbox, card: Card, index: int) -> Path:
    return (
        sandbox.folder.parent / "downloads" / card.name / f"{index}-{card.weights[index].filename}"
    )


def cards_named(command: str) -> list[Card]:
    cards = []
    for token in re.split(r"[\s'\"(),=]+", command):
        try:
            cards.append(REGISTRY.card(token))
        except (KeyError, ValueError):
            continue
    return cards


# --- the tests -----------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    venv = FreshVenv.create(tmp_path)
    site_packages = venv.python("-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    folder = Path(site_packages.stdout.strip())
    (folder / "zoo_test_urls.py").write_text(URL_STAND_IN)
    (folder / "zoo_test_urls.pth").write_text("import zoo_test_urls\n")
    hub = LoopbackHub()
    hub.start()
    (tmp_path / "sandbox").mkdir()
    yield Sandbox(venv, hub, tmp_path / "sandbox")
    hub.stop()


# Blocks run in the repository root by this process: their commands read nothing from a
# sandbox, so the README's set-up block, repeated on the getting-started page, runs once.
RAN_IN_ROOT: set[tuple[str, ...]] = set()


def run_blocks(sandbox: Sandbox, blocks: list[Block], used: set[str]) -> None:
    for block in blocks:
        if block.in_root and not block.parsed_only:
            if tuple(block.commands) in RAN_IN_ROOT:
                continue
            RAN_IN_ROOT.add(tuple(block.commands))
        if block.parsed_only:
            for written in block.commands:
                if without_comment(written).startswith("python benchmarks/"):
                    check_benchmark_options(block, written)
                else:
                    run_command(sandbox, block, written, f"{without_comment(written)} --help")
            continue
        for name, make in FILES.items():
            if any(name in command for command in block.commands):
                make(sandbox)
                used.add(name)
        for written in block.commands:
            command = without_comment(written)
            if command in REWRITES:
                used.add(command)
                command = REWRITES[command][0]
            for card in cards_named(command):
                stand_in_weights(sandbox, card)
            run_command(sandbox, block, written, command)


def check_benchmark_options(block: Block, written: str) -> None:
    """The script exists and takes every ``--option`` the command gives it."""
    script, *arguments = shlex.split(without_comment(written).removeprefix("python "))
    path = ROOT / script
    assert path.is_file(), f"{block}: `{written}`: there is no {script}"
    declared = {
        node.args[0].value
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "add_argument"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    unknown = [arg for arg in arguments if arg.startswith("--") and arg not in declared]
    assert not unknown, f"{block}: `{written}`: {script} takes no {unknown}"


def without_comment(written: str) -> str:
    return written.split(" # ", 1)[0].strip()


def run_command(sandbox: Sandbox, block: Block, written: str, command: str) -> None:
    result = sandbox.run(command, block)
    assert result.returncode == 0, (
        f"{block}: `{written}` failed ({result.returncode}):\n"
        f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    assert "Traceback" not in result.stderr, f"{block}: `{written}`:\n{result.stderr}"


def test_the_documents_hold_their_shell_examples_in_console_blocks_only():
    """Shell examples in any other fence would escape this test; so there are none."""
    assert {document: shell_fences(document) for document in DOCUMENTS} == {
        document: [] for document in DOCUMENTS
    }
    assert {"README.md", "docs/tasks/export.md", "docs/plugins/guide.md"} <= set(DOCUMENTS)


def test_every_stand_in_and_rewrite_is_used_by_a_command_of_the_documents():
    commands = [
        without_comment(command)
        for document in DOCUMENTS
        for block in console_blocks(document)
        if not block.parsed_only
        for command in block.commands
    ]

    assert [name for name in FILES if not any(name in command for command in commands)] == []
    assert [command for command in REWRITES if command not in commands] == []
    assert [made for document in MADE for made in MADE[document] if document not in DOCUMENTS] == []


@pytest.mark.heavy
@pytest.mark.parametrize("document", [d for d in DOCUMENTS if console_blocks(d)])
def test_every_command_in_a_document_runs_as_written(sandbox, document):
    run_blocks(sandbox, console_blocks(document), set())

    for made in MADE.get(document, []):
        assert (sandbox.folder / made).is_file(), f"{document}: nothing wrote {made}"


def test_a_benchmark_command_is_checked_against_the_options_its_script_declares():
    block = Block("example.md", 3, [], parsed_only=True)

    check_benchmark_options(block, "python benchmarks/bench_export.py --runs 5 --threads 1")
    with pytest.raises(AssertionError, match=r"bench_export\.py takes no \['--rnus'\]"):
        check_benchmark_options(block, "python benchmarks/bench_export.py --rnus 5")
    with pytest.raises(AssertionError, match=r"there is no benchmarks/bench_nothing\.py"):
        check_benchmark_options(block, "python benchmarks/bench_nothing.py")


def test_a_renamed_flag_fails_the_block_that_uses_it(sandbox):
    block = Block("example.md", 7, ["zoo list --tsk video-classification"])

    with pytest.raises(AssertionError, match=r"example\.md:7: `zoo list --tsk .*` failed \(2\)"):
        run_blocks(sandbox, [block], set())


def test_a_renamed_flag_fails_a_block_that_is_only_parsed(sandbox):
    block = Block("example.md", 9, ["zoo export c3d --statc -o c3d/"], parsed_only=True)

    with pytest.raises(AssertionError, match=r"example\.md:9: `zoo export c3d --statc .*` failed"):
        run_blocks(sandbox, [block], set())
