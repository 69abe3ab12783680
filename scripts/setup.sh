#!/usr/bin/env bash
# Create .venv and install zoo with everything its tests need, from nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip setuptools
# Before 0.1.0 the distribution was called zoo: an install of it, or its zoo.egg-info left in
# this folder, would register every built-in plugin a second time beside zoo-models.
.venv/bin/python -m pip uninstall --quiet --yes zoo 2>/dev/null || true
rm -rf zoo.egg-info
# torchvision is a test reference and the FPN plugin's ops; it imports only beside this torch.
.venv/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install --quiet -e '.[dev]'
# The authors' I3D port ships inside cd-fvd; its own dependencies are not needed for the tests.
.venv/bin/python -m pip install --quiet --no-deps cd-fvd==0.1.1
