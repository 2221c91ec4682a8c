from __future__ import annotations

import pytest

from st_drama.augment.sharding import Shard, chunk_bounds, derive_seed, parse_shard


@pytest.mark.parametrize(("num_chunks", "count"), [(0, 3), (1, 3), (7, 3), (10, 1), (10, 10), (11, 4)])
def test_shards_cover_all_chunks_in_order_without_overlap(num_chunks, count):
    ranges = [Shard(index, count).chunk_range(num_chunks) for index in range(1, count + 1)]
    assert [chunk for part in ranges for chunk in part] == list(range(num_chunks))
    sizes = [len(part) for part in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_parse_shard_and_errors():
    assert parse_shard("2/4") == Shard(2, 4)
    assert str(parse_shard("1/1")) == "1/1"
    for bad in ("0/4", "5/4", "1/0"):
        with pytest.raises(ValueError, match=r"numbered 1\.\.n"):
            parse_shard(bad)
    for bad in ("2", "a/b", "1/2/3"):
        with pytest.raises(ValueError, match="i/n"):
            parse_shard(bad)


def test_chunk_bounds():
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(0, 4) == []
    with pytest.raises(ValueError):
        chunk_bounds(10, 0)


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "crop", "doc-1") == derive_seed(0, "crop", "doc-1")
    seeds = {
        derive_seed(seed, label, item) for seed in (0, 1) for label in ("crop", "synthetic") for item in range(50)
    }
    assert len(seeds) == 200
    assert all(0 <= seed < 2**31 for seed in seeds)
