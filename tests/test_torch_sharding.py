"""Exact-once and equal-batches rule of omicsdata.torch.sharding (property tests)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omicsdata.errors import OmicsDataError
from omicsdata.torch import sharding as sh


def _served(sizes, **kw):
    """All (item, offset) pairs served by every worker of every rank, plus batch counts per rank."""
    world, nw = kw.pop("world_size"), kw.pop("num_workers")
    served, per_rank = [], []
    for r in range(world):
        nb = 0
        for w in range(nw):
            s = sh.plan(sizes, rank=r, world_size=world, worker=w, num_workers=nw, **kw)
            assert s.n_samples == int((s.segments[:, 2] - s.segments[:, 1]).sum())
            assert (s.batch_sizes >= 1).all() and (s.batch_sizes <= kw["batch_size"]).all()
            nb += len(s.batch_sizes)
            for item, a, b in s.segments:
                served.extend((int(item), o) for o in range(a, b))
        per_rank.append(nb)
    return served, per_rank


@settings(max_examples=150, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=30),
       batch=st.integers(2, 17), world=st.integers(1, 4), nw=st.integers(1, 4),
       epoch=st.integers(0, 5), seed=st.integers(0, 2**31), shuffle=st.booleans())
def test_every_sample_once_equal_batches(sizes, batch, world, nw, epoch, seed, shuffle):
    n = sum(sizes)
    kw = dict(batch_size=batch, epoch=epoch, seed=seed, shuffle=shuffle, world_size=world, num_workers=nw)
    if 0 < n < world:
        with pytest.raises(sh.ShardingError):
            _served(sizes, **kw)
        return
    served, per_rank = _served(sizes, **kw)
    expected = sorted((i, o) for i, s in enumerate(sizes) for o in range(s))
    assert sorted(served) == expected  # exactly once, across all ranks and workers
    assert len(set(per_rank)) == 1 and per_rank[0] == -(-n // (world * batch))


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=30),
       batch=st.integers(1, 17), world=st.integers(1, 4), nw=st.integers(1, 3), epoch=st.integers(0, 3))
def test_drop_last_full_batches_no_repeats(sizes, batch, world, nw, epoch):
    served, per_rank = _served(sizes, batch_size=batch, epoch=epoch, seed=1, shuffle=True,
                               world_size=world, num_workers=nw, drop_last=True)
    n = sum(sizes)
    assert len(served) == len(set(served)) == (n // (world * batch)) * world * batch
    assert len(set(per_rank)) == 1


def test_epochs_reshuffle_and_seeds_reproduce():
    sizes = [10] * 50
    a = sh.plan(sizes, batch_size=8, epoch=0, seed=3, rank=0, world_size=1, worker=0, num_workers=1)
    b = sh.plan(sizes, batch_size=8, epoch=1, seed=3, rank=0, world_size=1, worker=0, num_workers=1)
    c = sh.plan(sizes, batch_size=8, epoch=0, seed=3, rank=0, world_size=1, worker=0, num_workers=1)
    assert not np.array_equal(a.segments, b.segments)
    assert np.array_equal(a.segments, c.segments)
    u = sh.plan(sizes, batch_size=8, shuffle=False, rank=0, world_size=1, worker=0, num_workers=1)
    assert u.segments[:, 0].tolist() == list(range(50))


def test_remainder_rule_example():
    # 513 samples, 2 ranks, batch 256: both ranks yield 2 batches
    r0 = sh.plan([513], batch_size=256, rank=0, world_size=2, worker=0, num_workers=1, shuffle=False)
    r1 = sh.plan([513], batch_size=256, rank=1, world_size=2, worker=0, num_workers=1, shuffle=False)
    assert r0.batch_sizes.tolist() == [256, 1]
    assert r1.batch_sizes.tolist() == [255, 1]


def test_impossible_requests_raise_named_errors(monkeypatch):
    with pytest.raises(OmicsDataError, match="world_size"):
        sh.plan([3], batch_size=4, rank=0, world_size=4, worker=0, num_workers=1)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(OmicsDataError, match="RANK=3"):
        sh.get_rank_world()
    monkeypatch.setenv("RANK", "1")
    assert sh.get_rank_world() == (1, 2)
    assert sh.get_worker() == (0, 1)
