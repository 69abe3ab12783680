"""FGSM and PGD in pixel space, on a detector trained here (images) and its inflated clip form."""

from __future__ import annotations

import json

import pytest
import torch
from interpret_models import inflate, square_images, trained_square_net
from torch import nn

from zoo.interpret import InterpretError, fgsm, pgd


def squares(count: int = 32, seed: int = 11) -> torch.Tensor:
    pixels, labels, _ = square_images(count, seed=seed)
    return pixels[labels == 1]


def clips_with_a_square(count: int = 4) -> torch.Tensor:
    """(count, 3, 6, 24, 24): noise, with a square image in frames 2 to 3."""
    clips = torch.rand(count, 3, 6, 24, 24, generator=torch.Generator().manual_seed(3)) * 0.5
    clips[:, :, 2:4] = squares(2 * count)[:count, :, None]
    return clips


def target_probabilities(attack) -> tuple[torch.Tensor, torch.Tensor]:
    before = torch.tensor([s.target.probability for s in attack.samples])
    after = torch.tensor([s.target_after.probability for s in attack.samples])
    return before, after


def test_fgsm_at_eps_zero_changes_nothing():
    pixels = squares()

    attack = fgsm(trained_square_net(), pixels, 1, eps=0.0)

    assert torch.equal(attack.adversarial, pixels)
    assert all(s.linf == 0 and s.adversarial == s.clean for s in attack.samples)


def test_fgsm_lowers_the_true_class_score_of_a_trained_model_within_eps():
    pixels = squares()

    attack = fgsm(trained_square_net(), pixels, 1, eps=0.05, labels=["noise", "square"])
    before, after = target_probabilities(attack)

    assert (before > 0.8).all()  # the model is right and sure on the clean images
    assert (after < before).all() and after.mean() < 0.5 * before.mean()
    assert max(s.linf for s in attack.samples) <= 0.05 + 1e-6
    assert attack.adversarial.min() >= 0 and attack.adversarial.max() <= 1
    assert attack.samples[0].clean.label == "square"


def test_pgd_fools_the_trained_model_inside_the_eps_ball():
    pixels = squares()

    attack = pgd(trained_square_net(), pixels, 1, eps=0.1, steps=5, random_start=True)
    _, after = target_probabilities(attack)

    assert all(s.fooled for s in attack.samples)
    assert (after < 0.5).all()
    assert ((attack.adversarial - pixels).abs() <= 0.1 + 1e-6).all()


def test_attacks_work_on_clips():
    clips, clip_model = clips_with_a_square(), inflate(trained_square_net())

    for attack in (fgsm(clip_model, clips, 1, eps=0.05), pgd(clip_model, clips, 1, eps=0.05)):
        before, after = target_probabilities(attack)
        assert attack.adversarial.shape == clips.shape
        assert (after < before).all()
        assert max(s.linf for s in attack.samples) <= 0.05 + 1e-6


def test_the_normalisation_is_inside_the_attacked_function():
    """A model that eats normalised input, attacked with its normalisation, is attacked in
    pixel space exactly as the same model taking pixels."""
    trained = trained_square_net()
    denormalise = nn.Sequential()
    denormalise.forward = lambda x: trained(x * 0.25 + 0.5)  # type: ignore[method-assign]
    pixels = squares()

    direct = fgsm(trained, pixels, 1, eps=0.03)
    normalised = fgsm(denormalise, pixels, 1, eps=0.03, normalize=lambda x: (x - 0.5) / 0.25)

    torch.testing.assert_close(normalised.adversarial, direct.adversarial)
    torch.testing.assert_close(target_probabilities(normalised), target_probabilities(direct))


def test_pixels_outside_zero_to_one_are_refused_clearly():
    with pytest.raises(InterpretError, match=r"pixel space: expected values in \[0, 1\]"):
        fgsm(trained_square_net(), squares() * 2 - 1, 1)
    with pytest.raises(InterpretError, match=r"eps >= 0, found -0.1"):
        fgsm(trained_square_net(), squares(), 1, eps=-0.1)


def test_an_attack_prints_as_json_without_the_pixels():
    attack = pgd(trained_square_net(), squares(8), 1, eps=0.02, steps=2)

    data = json.loads(attack.model_dump_json())

    assert set(data) == {"method", "eps", "steps", "step_size", "samples"}
    assert data["method"] == "pgd" and data["step_size"] == pytest.approx(0.025)
    assert data["samples"][0]["target"]["index"] == 1
