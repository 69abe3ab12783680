"""The CLI through its real entry point, in subprocesses."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from pathlib import Path

from huggingface_hub import ModelCard

from zoo.cards import Card
from zoo.modelcard import from_hf_model_card
from zoo.registry import Registry

ZOO = str(Path(sys.executable).with_name("zoo"))  # the console script of this environment
FIRST_CARD = Registry.from_entry_points().cards()[0]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ZOO, *args], capture_output=True, text=True)


def test_listing_commands_never_import_torch():
    script = (
        "import sys\n"
        "from zoo.cli import main\n"
        "for args in (['list'], ['list', '--json'], ['info', sys.argv[1]], ['plugins'],"
        " ['card', 'render', sys.argv[1]]):\n"
        "    main(args, standalone_mode=False)\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, FIRST_CARD.name], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("NO-TORCH")


def matching(cards: list[Card], pattern: str) -> list[str]:
    """The names of the cards whose name or an alias matches ``pattern``, by fnmatch's rule."""
    return [
        card.name
        for card in cards
        if any(fnmatch.fnmatchcase(name, pattern) for name in (card.name, *card.aliases))
    ]


def test_list_shows_every_model_and_filters():
    cards = Registry.from_entry_points().cards()
    by_name = FIRST_CARD.name[:3] + "*"
    by_alias_only = next(  # matches no card's name: only a search of aliases finds it
        alias
        for card in cards
        for alias in card.aliases
        if not any(fnmatch.fnmatchcase(other.name, alias) for other in cards)
    )
    everything = json.loads(run("list", "--json").stdout)

    assert [row["name"] for row in everything] == [c.name for c in cards]
    for pattern in (by_name, by_alias_only):
        filtered = [row["name"] for row in json.loads(run("list", pattern, "--json").stdout)]
        assert filtered == matching(cards, pattern)
        assert 0 < len(filtered) < len(cards), pattern


def test_list_with_an_unknown_task_fails_and_names_the_known_tasks():
    result = run("list", "--task", "video", "--json")

    assert result.returncode == 1 and result.stdout == ""
    assert "unknown task 'video'" in result.stderr
    assert "video-classification" in result.stderr and "object-detection" in result.stderr


def test_info_resolves_aliases_and_prints_the_card():
    name = FIRST_CARD.aliases[0] if FIRST_CARD.aliases else FIRST_CARD.name
    result = run("info", name, "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == FIRST_CARD.name
    assert f"name: {FIRST_CARD.name}" in run("info", FIRST_CARD.name).stdout


def test_an_unknown_name_fails_with_suggestions():
    result = run("info", FIRST_CARD.name + "x")

    assert result.returncode == 1
    assert f"did you mean '{FIRST_CARD.name}'" in result.stderr
    assert "Traceback" not in result.stderr


def test_card_render_writes_a_hugging_face_card_that_reads_back(tmp_path):
    result = run("card", "render", FIRST_CARD.name, "-o", str(tmp_path))

    assert result.returncode == 0, result.stderr
    model_card = ModelCard.load(tmp_path / "README.md")
    assert model_card.data.library_name == "zoo"
    assert model_card.data.license == FIRST_CARD.license
    assert from_hf_model_card(model_card, "README.md") == FIRST_CARD
    assert not list(tmp_path.glob(".*partial"))


def test_card_validate_reports_each_invalid_file(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(FIRST_CARD.to_yaml())
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")

    result = run("card", "validate", str(good), str(bad))

    assert result.returncode == 1
    assert f"ok: {good}" in result.stdout
    assert f"invalid: {bad}: architecture: Field required" in result.stdout
    assert result.stderr == "Error: 1 of 2 cards are invalid\n"


def test_card_render_into_a_folder_that_does_not_exist_yet_creates_it(tmp_path):
    result = run("card", "render", FIRST_CARD.name, "-o", f"{tmp_path / 'new'}/")

    assert result.returncode == 0, result.stderr
    assert ModelCard.load(tmp_path / "new" / "README.md").data.library_name == "zoo"
