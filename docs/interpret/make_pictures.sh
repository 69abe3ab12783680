#!/usr/bin/env bash
# Remake the pictures of docs/tasks/interpretation.md from nothing: the inputs come from
# tests/data and the ConvLSTM plugin's data generator, the classifiers run with --random
# (seeded, so each command repeats its picture), the ConvLSTM with its shipped weights.
set -euo pipefail
cd "$(dirname "$0")/../.."
zoo=.venv/bin/zoo
docs=docs/interpret
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

.venv/bin/python $docs/inputs.py "$work"
clip=tests/data/v_CricketShot_g04_c01_rgb.gif

$zoo explain resnet50.tv_in1k "$work/frame.png" --random -o "$work/image"
$zoo explain c3d-sports1m $clip --random -o "$work/clip"
$zoo explain convlstm-moving-digits "$work/digits.gif" --method occlusion \
    --window 2,8,8 --stride 1,4,4 --baseline 0 -o "$work/forecast"
$zoo embed resnet50.tv_in1k "$work/clean" "$work/noised" --random \
    --map "$work/map.png" --method tsne
$zoo attack resnet50.tv_in1k "$work/frame.png" --random --eps 0.01 -o "$work/attack"

cp "$work/image/gradcam.png" $docs/gradcam-resnet50-random.png
cp "$work/clip/gradcam.gif" $docs/gradcam-c3d-random.gif
cp "$work/clip/gradcam-frames.png" $docs/gradcam-c3d-random-frames.png
cp "$work/forecast/occlusion.gif" $docs/occlusion-convlstm.gif
cp "$work/forecast/occlusion-frames.png" $docs/occlusion-convlstm-frames.png
cp "$work/map.png" $docs/tsne-resnet50-random.png
cp "$work/attack/attack.png" $docs/fgsm-resnet50-random.png

# 256-colour palettes keep the committed PNGs small (the noise panel of the attack figure
# does not compress otherwise); the GIFs have palettes already.
.venv/bin/python - $docs/*.png <<'PY'
import sys
from PIL import Image
for path in sys.argv[1:]:
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(256)
    small.save(path, optimize=True)
PY
