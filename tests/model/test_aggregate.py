"""aggregate_video: a video's prediction from its clips', as DESIGN.md's model contract says."""

from __future__ import annotations

import torch

from model.aggregate import aggregate_video


def _clips(n: int = 5, classes: int = 4, experts: int = 6, k: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    probs = torch.randn(n, classes, generator=generator).softmax(1)
    indices = torch.stack([torch.randperm(experts, generator=generator)[:k] for _ in range(n)])
    weights = torch.rand(n, k, generator=generator).softmax(1)
    gates = torch.zeros(n, experts).scatter(1, indices, weights)
    return probs, gates, indices


def test_a_videos_scores_are_the_mean_of_its_clips_softmax_and_gates() -> None:
    probs, gates, indices = _clips()
    # One clip sure of another class: averaging logits would let it outvote the rest.
    logits = torch.tensor([[0.0, 2.0]] * 4 + [[30.0, 0.0]])

    scores = aggregate_video(probs, gates, indices)
    confident = aggregate_video(logits.softmax(1), torch.ones(5, 1))

    assert torch.equal(scores.probs, probs.mean(0))
    assert torch.equal(scores.gates, gates.mean(0))
    assert confident.probs.argmax() == 1 and logits.mean(0).argmax() == 0


def test_chosen_counts_the_clips_whose_top_k_include_each_expert() -> None:
    probs, gates, indices = _clips(n=7, experts=5, k=3)

    chosen = aggregate_video(probs, gates, indices).chosen

    assert chosen.dtype == torch.int64
    assert chosen.tolist() == [int((indices == e).any(1).sum()) for e in range(5)]


def test_each_video_of_a_batch_is_averaged_on_its_own() -> None:
    videos = [_clips(seed=seed) for seed in range(3)]
    batch = [torch.stack(part) for part in zip(*videos, strict=True)]

    together = aggregate_video(*batch)

    for i, video in enumerate(videos):
        alone = aggregate_video(*video)
        assert torch.equal(together.probs[i], alone.probs)
        assert torch.equal(together.gates[i], alone.gates)
        assert torch.equal(together.chosen[i], alone.chosen)
