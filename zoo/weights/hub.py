"""Files from the Hugging Face Hub: downloaded by huggingface_hub, checked against the Hub.

huggingface_hub downloads, caches, locks and names each blob by the ETag the
Hub announced: for an LFS file its sha256, for a small file kept in git its git
blob sha1. It checks only the size. zoo hashes the file once and compares, so
a file damaged in transit or on disk is caught (``integrity: hub-lfs``); where
the card pins ``revision`` to a commit, the commit fixes that hash and the
check is a full integrity check.

When the endpoint refuses connections, huggingface_hub retries for about 23 s
before it gives up; zoo asks once first (one HEAD, no retries) for a file that
is not cached yet, so a dead endpoint is an error in well under a second.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import ArgumentError, CardError, WeightsError
from zoo.weights.files import MODEL_FILE, WeightsFile
from zoo.weights.integrity import Algorithm, announced_hash, etag_hash, verify, warn_once

if TYPE_CHECKING:
    from zoo.cards import Card

HF_HUB_PREFIX = "hf-hub:"
HUB_SPEC = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """``org/name[@revision]`` as (repo_id, revision); anything else is an ArgumentError."""
    found = HUB_SPEC.match(spec)
    if found is None:
        raise ArgumentError(
            f"{HF_HUB_PREFIX} names a Hub repo as {HF_HUB_PREFIX}org/name[@revision], "
            f"found {HF_HUB_PREFIX}{spec}"
        )
    return found["repo"], found["revision"]


def hub_file(
    repo_id: str, filename: str, revision: str | None, *, card: str, sha256: str | None = None
) -> Path:
    """The cached file, downloaded once, checked against the card's hash and the Hub's."""
    from huggingface_hub import hf_hub_download

    where = f"{repo_id}/{filename}@{revision or 'main'}"
    with hub_errors(where, card, _url(repo_id, filename, revision)):
        announced = _ask_first(repo_id, filename, revision)
        path = Path(hf_hub_download(repo_id, filename, revision=revision))
    verify(path, sha256)
    _verify_announced(path, announced_hash(path) or announced, sha256, where)
    return path


def _verify_announced(
    path: Path, announced: tuple[Algorithm, str] | None, sha256: str | None, where: str
) -> None:
    if announced is None:
        warn_once(f"{where}: the Hub's hash for it is unknown here, so it was not checked")
        return
    algorithm, expected = announced
    if algorithm == "sha256" and expected == sha256:
        return  # the same check as the card's, already done
    source = "the Hub's LFS sha256" if algorithm == "sha256" else "the Hub's git blob id"
    verify(path, expected, algorithm=algorithm, source=source)


def _ask_first(repo_id: str, filename: str, revision: str | None) -> tuple[Algorithm, str] | None:
    """One HEAD without retries for a file not cached yet: its announced hash, or a fast error.

    A refused connection is raised at once; other failures (timeouts, 5xx) are
    left to ``hf_hub_download``, which retries them as it should.
    """
    import httpx2
    from huggingface_hub import constants, get_hf_file_metadata, try_to_load_from_cache

    if constants.is_offline_mode():
        return None
    if isinstance(try_to_load_from_cache(repo_id, filename, revision=revision), str):
        return None
    try:
        metadata = get_hf_file_metadata(_url(repo_id, filename, revision))
    except httpx2.ConnectError:
        raise
    except Exception:  # huggingface_hub's own download reports (or retries) it
        return None
    return etag_hash(metadata.etag)


def _url(repo_id: str, filename: str, revision: str | None) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo_id, filename, revision=revision)


@contextmanager
def hub_errors(where: str, card: str, url: str) -> Iterator[None]:
    """Name the file, the cause and a remedy that helps, for every way a download fails."""
    import httpx2
    from huggingface_hub import errors

    try:
        yield
    except errors.RemoteEntryNotFoundError:
        raise WeightsError(f"{card}: {where} does not exist on the Hub (404)") from None
    except errors.RevisionNotFoundError:
        raise WeightsError(f"{card}: revision of {where} does not exist on the Hub") from None
    except errors.RepositoryNotFoundError:
        raise WeightsError(f"{card}: repository of {where} not found (or private)") from None
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled) as error:
        raise WeightsError(unreachable(card, url, error)) from None
    except errors.HFValidationError as error:
        raise ArgumentError(
            f"{card}: {where} is not a valid Hub file: {_first_line(error)}"
        ) from None
    except errors.HfHubHTTPError as error:
        raise WeightsError(f"{card}: downloading {where} failed: {_first_line(error)}") from None
    except httpx2.ConnectError as error:
        raise WeightsError(unreachable(card, url, error)) from None
    except (OSError, httpx2.HTTPError) as error:
        raise WeightsError(
            f"{card}: downloading {where} failed: {_first_line(error)}; check the network or "
            "HF_ENDPOINT, or download the file yourself and pass it with weights=FILE"
        ) from None


def unreachable(card: str, url: str, error: BaseException) -> str:
    """Why ``url`` could not be fetched, and what helps: never "run the same thing again"."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        cause, remedy = "HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE to download it"
    else:
        cause = f"cannot reach it: {_first_line(error.__cause__ or error)}"
        remedy = f"check the network or HF_ENDPOINT (now {constants.ENDPOINT})"
    return (
        f"{card}: {url} is not in the local cache and {cause}; {remedy}, or download the file "
        "yourself and pass it with weights=FILE (--weights FILE; a pickle goes through "
        "`zoo convert` first)"
    )


def fetch_hub_repo(spec: str, *, with_weights: bool = True) -> tuple[Card, WeightsFile | None]:
    """Card and verified weights of a repo published by ``zoo push``: ``org/name[@revision]``.

    Both files come from the same commit: the README's snapshot folder names it.
    """
    from zoo.modelcard import from_hf_model_card

    repo_id, revision = parse_hub_spec(spec)
    origin = f"{HF_HUB_PREFIX}{spec}"
    readme = hub_file(repo_id, "README.md", revision, card=origin)
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CardError(f"{origin}/README.md: cannot read the model card ({error})") from None
    card = from_hf_model_card(text, origin=f"{origin}/README.md")
    if not with_weights:
        return card, None
    commit = readme.parent.name
    expected = next((part.sha256 for part in card.weights if part.filename == MODEL_FILE), None)
    weights = hub_file(repo_id, MODEL_FILE, commit, card=origin, sha256=expected)
    return card, WeightsFile(weights, "zoo", "")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
