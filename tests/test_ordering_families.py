"""The families of training orderings for any-order models: valid permutations, seeded, of the shapes asked."""

import numpy as np
import pytest
import torch

from app.core.ordering_families import (
    TrainingOrderings,
    dihedral,
    grown_ranks,
    preset_ranks,
    ring_ranks,
    sweep_ranks,
)
from app.core.orderings import raster


@pytest.mark.parametrize("family", [sweep_ranks, ring_ranks, grown_ranks, preset_ranks])
def test_every_family_gives_permutations(family):
    ranks = family(7, 7, 20, np.random.default_rng(0))
    assert ranks.shape == (20, 49)
    assert (np.sort(ranks, axis=1) == np.arange(49)).all()


def test_grown_regions_step_to_a_neighbour_of_what_is_already_there():
    rank = grown_ranks(8, 8, 1, np.random.default_rng(3))[0].reshape(8, 8)
    seen = np.zeros((8, 8), bool)
    seeds = 0
    for step in range(64):
        r, c = map(int, np.argwhere(rank == step)[0])
        neighbours = [(r + dr, c + dc) for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)) if 0 <= r + dr < 8 and 0 <= c + dc < 8]
        seeds += not any(seen[q] for q in neighbours)
        seen[r, c] = True
    assert 1 <= seeds <= 3


def test_sweeps_include_raster_exactly():
    target = raster(5, 5).rank.reshape(-1)
    ranks = sweep_ranks(5, 5, 400, np.random.default_rng(1))
    assert (ranks == target).all(axis=1).any()


def test_dihedral_transforms_are_eight_distinct_orderings():
    rank = raster(4, 4).rank
    distinct = {dihedral(rank, k).tobytes() for k in range(8)}
    assert len(distinct) == 8


def test_the_mixture_is_seeded_and_refuses_unknown_families():
    fam = TrainingOrderings(6, 6)
    a = fam.sample(10, torch.Generator().manual_seed(5))
    b = fam.sample(10, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown ordering families"):
        TrainingOrderings(6, 6, {"spirals": 1.0})
    with pytest.raises(ValueError, match="non-negative"):
        TrainingOrderings(6, 6, {"random": -1.0, "sweep": 0.5})
