"""Pretrained weights: fetched through huggingface_hub, verified, converted and cached.

Downloads, the Hub cache layout, file locking, progress bars and the
``HF_ENDPOINT``, ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` settings are
huggingface_hub's own; zoo adds what it lacks, one module each:

- :mod:`~zoo.weights.integrity`: every file is checked, by the card's sha256,
  the hash in a torchvision URL, the Hub's announced LFS hash, or a record made
  on first use; a file that fails is removed and never used.
- :mod:`~zoo.weights.hub`: Hub files, with errors that name the file, the
  cause and a remedy, and no 23 s of retries when the endpoint refuses.
- :mod:`~zoo.weights.files`: recognising, reading (safely), converting and
  atomically writing weights files.
- :mod:`~zoo.weights.fetch`: a card's weights, upstream pickles converted once.
- :mod:`~zoo.weights.cache` and :mod:`~zoo.weights.inventory`: the zoo cache,
  what is in it, pulling and clearing.
"""

from __future__ import annotations

from zoo.weights.cache import zoo_cache_dir
from zoo.weights.fetch import bundled_path, converted_pickle, fetch
from zoo.weights.files import (
    MODEL_FILE,
    WeightsFile,
    convert_state_dict,
    merge_parts,
    read_checkpoint,
    read_state_dict,
    save_safetensors,
)
from zoo.weights.hub import HF_HUB_PREFIX, fetch_hub_repo, hub_file, parse_hub_spec
from zoo.weights.integrity import discard, sha256_of, verify
from zoo.weights.inventory import (
    CacheListing,
    ClearedCache,
    PulledPart,
    cache_listing,
    clear_cache,
    pull,
)

__all__ = [
    "HF_HUB_PREFIX",
    "MODEL_FILE",
    "CacheListing",
    "ClearedCache",
    "PulledPart",
    "WeightsFile",
    "bundled_path",
    "cache_listing",
    "clear_cache",
    "convert_state_dict",
    "converted_pickle",
    "discard",
    "fetch",
    "fetch_hub_repo",
    "hub_file",
    "merge_parts",
    "parse_hub_spec",
    "pull",
    "read_checkpoint",
    "read_state_dict",
    "save_safetensors",
    "sha256_of",
    "verify",
    "zoo_cache_dir",
]
