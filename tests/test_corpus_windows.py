"""Dense windows read back from a video whose frame k shows the number k, and the memory
they hold: the frames the model gets are exactly the frames the index says."""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import pytest
from corpus_media import counted_frames, frame_numbers
from corpus_models import card, weights
from media import write_video

import zoo
from zoo.cards import Card
from zoo.corpus import windows as planning
from zoo.corpus.tables import read_index
from zoo.errors import InputError
from zoo.inference import decode, streaming
from zoo.inference.decode import read_media
from zoo.inference.transforms import RESIZE_CHUNK


@pytest.fixture(scope="module")
def counted(tmp_path_factory) -> Path:
    """100 frames at 25 fps (4 s), frame k showing k."""
    folder = tmp_path_factory.mktemp("counted")
    return write_video(folder / "counted.mkv", counted_frames(100), fps=25)


@pytest.fixture(scope="module")
def predictor():
    return zoo.predictor(card("c3d-sports1m"), pretrained=False, backend="torch")


def with_too_short(small: Card, too_short: str) -> Card:
    data = small.to_data()
    data["inputs"][0]["temporal"]["too_short"] = too_short
    return Card.from_data(data)


def windows_of(predictor, video: Path, **options) -> tuple[planning.WindowPlan, np.ndarray]:
    """The plan, and the frame numbers each window's pixels show once pre-processed."""
    spec = predictor.card.inputs[0]
    given = {"window": None, "stride": None, "fps": None, "pad_last": False, **options}
    resolved = planning.resolve(spec, model="m", **given)
    media = read_media(video)
    plan = planning.plan(media, resolved, spec, predictor.preprocessor.lag)
    batches = streaming.window_batches(
        predictor.preprocessor, media, list(plan.indices), batch_size=3, normalize=False
    )
    pixels = np.concatenate([batch.tensor.numpy() for batch in batches])  # (rows, C, T, H, W)
    uint8 = np.rint(pixels.transpose(0, 2, 3, 4, 1) * 255).astype(np.uint8)
    return plan, frame_numbers(uint8)


def test_windows_start_every_stride_and_show_exactly_their_frames(predictor, counted):
    plan, shown = windows_of(predictor, counted, window=16, stride=10)

    starts = np.arange(0, 81, 10)  # 90 + 16 > 100: the tail is not a whole window
    assert plan.first_frame.tolist() == starts.tolist()
    assert plan.last_frame.tolist() == (starts + 15).tolist()
    np.testing.assert_allclose(plan.first_time, starts / 25)
    np.testing.assert_allclose(plan.last_time, (starts + 15) / 25)
    assert shown.tolist() == [list(range(start, start + 16)) for start in starts]


def test_resampling_to_a_lower_rate_takes_the_frame_on_screen_at_each_tick(predictor, counted):
    plan, shown = windows_of(predictor, counted, window=4, stride=4, fps=10)

    ticks = np.arange(40)  # 4 s at 10 fps; tick i shows frame floor(i * 25 / 10)
    on_screen = ticks * 25 // 10
    assert shown.flatten().tolist() == on_screen.tolist()
    assert plan.first_frame.tolist() == on_screen[::4].tolist() and plan.fps == 10
    np.testing.assert_allclose(plan.first_time, on_screen[::4] / 25)


def test_the_tail_is_dropped_or_padded_as_the_card_says(predictor, counted):
    whole, _ = windows_of(predictor, counted, window=16, stride=16)
    looped_card = zoo.predictor(
        with_too_short(predictor.card, "loop"), pretrained=False, backend="torch"
    )
    padded_card = zoo.predictor(
        with_too_short(predictor.card, "pad"), pretrained=False, backend="torch"
    )

    _, looped = windows_of(looped_card, counted, window=16, stride=16, pad_last=True)
    _, padded = windows_of(padded_card, counted, window=16, stride=16, pad_last=True)

    assert whole.last_frame.tolist() == [15, 31, 47, 63, 79, 95]
    assert looped[-1].tolist() == [96, 97, 98, 99] * 4
    assert padded[-1].tolist() == [96, 97, 98, 99] + [99] * 12
    assert (
        looped[:-1].tolist()
        == padded[:-1].tolist()
        == [list(range(s, s + 16)) for s in range(0, 96, 16)]
    )


def test_a_video_shorter_than_one_window_is_refused_unless_padded(predictor, tmp_path):
    short = write_video(tmp_path / "short.mkv", counted_frames(10), fps=25)

    with pytest.raises(InputError, match=r"has 10 frames, fewer than one window of 16"):
        windows_of(predictor, short)
    _, shown = windows_of(predictor, short, pad_last=True)

    assert shown.tolist() == [list(range(10)) + list(range(6))]  # C3D's card loops


def test_a_long_video_is_held_only_a_few_frames_at_a_time(tmp_path, monkeypatch):
    """An instrumented decoder counts the decoded frames alive at once, and the window
    reader the frames it holds, while a 2000-frame video goes through zoo.features."""
    video = write_video(tmp_path / "long.mkv", counted_frames(2000), fps=25)
    alive: set[int] = set()
    most_alive = [0]
    readers: list[streaming.WindowFrames] = []
    decoded = decode.iter_frames

    def counting(path, wanted, source):
        for frame in decoded(path, wanted, source):
            alive.add(id(frame))
            weakref.finalize(frame, alive.discard, id(frame))
            most_alive[0] = max(most_alive[0], len(alive))
            yield frame

    opened = streaming.WindowFrames.__init__

    def recording(self, *args, **kwargs):
        opened(self, *args, **kwargs)
        readers.append(self)

    monkeypatch.setattr(decode, "iter_frames", counting)
    monkeypatch.setattr(streaming.WindowFrames, "__init__", recording)
    small = card("c3d-sports1m")
    report = zoo.features(
        small,
        [video],
        tmp_path / "out",
        weights=weights(small, tmp_path),
        stride=64,
        batch_size=4,
        workers=1,
    )

    (row,) = read_index(tmp_path / "out/index.parquet")
    assert report.done == 1 and row["rows"] == len(range(0, 2000 - 16 + 1, 64)) == 32
    assert most_alive[0] <= RESIZE_CHUNK  # decoded frames at full size: one chunk at most
    assert readers[0].peak <= 4 * 16 + RESIZE_CHUNK  # a batch of 4 windows, and one chunk
