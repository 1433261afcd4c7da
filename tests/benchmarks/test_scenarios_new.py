"""Rotated-MNIST, the online protocol and the task-free blurry stream, on tiny generated data.

The synthetic root has 30 training and 10 test images per class (``tests/conftest.py``).
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.blurry import blur_parts
from benchmarks.config import ConfigError, make_run_config
from benchmarks.online import MiniStream
from benchmarks.rotation import angles, rotate
from benchmarks.streams import build_benchmark

# ---------------------------------------------------------------- rotated-mnist


def test_rotated_angles_are_the_even_grid_in_a_seeded_order():
    assert sorted(angles(4, seed=0)) == [0.0, 45.0, 90.0, 135.0]
    assert sorted(angles(20, seed=3)) == [9.0 * k for k in range(20)]  # the DER protocol's 20
    assert angles(10, seed=1) == angles(10, seed=1)
    assert angles(10, seed=1) != angles(10, seed=2)  # same domains, another order


def test_rotation_by_0_and_90_degrees_is_exact():
    x = torch.arange(2 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5)
    assert torch.equal(rotate(x, 0.0, background=-1.0), x)
    # counter-clockwise: the top-right pixel goes to the top-left
    assert torch.allclose(rotate(x, 90.0, background=-1.0), torch.rot90(x, 1, dims=(2, 3)), atol=1e-4)


def test_rotation_fills_with_the_background():
    x = torch.full((1, 1, 6, 6), 2.0)
    out = rotate(x, 45.0, background=-0.5)
    assert out[0, 0, 0, 0] == pytest.approx(-0.5)  # a corner comes from outside the image
    assert out[0, 0, 3, 3] == pytest.approx(2.0)  # the centre stays inside


def test_rotated_mnist_experiences(synthetic_mnist):
    bench = build_benchmark("rotated-mnist", synthetic_mnist, seed=0, n_experiences=4)
    assert bench.n_experiences == 4 and sorted(bench.meta["angles"]) == [0.0, 45.0, 90.0, 135.0]
    for train, valid, test in zip(bench.train_stream, bench.valid_stream, bench.test_stream):
        assert (len(train), len(valid), len(test)) == (270, 30, 100)  # 300 train images, 10% held out
        assert train.classes_in_this_experience == list(range(10))  # domain-incremental: every class
        assert set(train.tensors[2].tolist()) == {0}
    # each test experience is the whole test set rotated by its angle, once, as a tensor
    upright = bench.meta["angles"].index(0.0)
    quarter = bench.meta["angles"].index(90.0)
    x0 = bench.test_stream[upright].tensors[0]
    assert torch.equal(x0, synthetic_mnist.test_x)
    assert torch.allclose(bench.test_stream[quarter].tensors[0], torch.rot90(x0, 1, dims=(2, 3)), atol=1e-4)


def test_rotated_mnist_is_deterministic_for_a_seed(synthetic_mnist):
    a, b = (build_benchmark("rotated-mnist", synthetic_mnist, seed=5, n_experiences=3) for _ in range(2))
    c = build_benchmark("rotated-mnist", synthetic_mnist, seed=6, n_experiences=3)
    for ea, eb in zip(a.train_stream, b.train_stream):
        assert all(torch.equal(p, q) for p, q in zip(ea.tensors, eb.tensors))
    assert a.meta["angles"] == b.meta["angles"]
    assert not all(torch.equal(p.tensors[0], q.tensors[0]) for p, q in zip(a.train_stream, c.train_stream))


# ---------------------------------------------------------------- split-mnist-blurry


def test_blur_moves_the_stated_fraction(synthetic_mnist):
    # 60 images per experience (no hold-out); blur 0.2 gives away 12, 3 to each of the 4 others
    bench = build_benchmark("split-mnist-blurry", synthetic_mnist, seed=0, valid_fraction=0.0, blur=0.2)
    moved = bench.meta["moved"]
    assert moved == [[0 if i == j else 3 for i in range(5)] for j in range(5)]
    for i, exp in enumerate(bench.train_stream):
        y = exp.tensors[1]
        own = torch.isin(y, torch.tensor([2 * i, 2 * i + 1]))
        assert len(y) == 60
        assert int((~own).sum()) == 12  # exactly 20% from the other experiences' classes
        foreign = sorted(set(y[~own].tolist()))
        assert all(c // 2 != i for c in foreign)
        # 3 samples from each other experience, so from every other class pair
        assert sorted({c // 2 for c in foreign}) == [j for j in range(5) if j != i]


def test_blurry_default_is_blurry10_and_test_stream_is_split_mnist(synthetic_mnist):
    blurry = build_benchmark("split-mnist-blurry", synthetic_mnist, seed=1)
    split = build_benchmark("split-mnist", synthetic_mnist, seed=1)
    assert blurry.meta["blur"] == 0.1
    # 54 training images per experience after the 10% hold-out; round(5.4) = 5 given away
    assert [sum(row) for row in blurry.meta["moved"]] == [5] * 5
    for b, s in zip(blurry.test_stream, split.test_stream):
        assert all(torch.equal(p, q) for p, q in zip(b.tensors, s.tensors))  # evaluated at the original boundaries
    for b, s in zip(blurry.valid_stream, split.valid_stream):
        assert all(torch.equal(p, q) for p, q in zip(b.tensors, s.tensors))
    # the training samples are split-mnist's, moved around: the same multiset of labels
    all_b = torch.cat([e.tensors[1] for e in blurry.train_stream]).sort().values
    all_s = torch.cat([e.tensors[1] for e in split.train_stream]).sort().values
    assert torch.equal(all_b, all_s)


def test_blur_zero_is_split_mnist_and_bad_blur_is_refused():
    parts = [(torch.zeros(4, 1), torch.full((4,), i), torch.zeros(4, dtype=torch.long)) for i in range(3)]
    out, moved = blur_parts(parts, 0.0, torch.Generator().manual_seed(0))
    assert moved == [[0, 0, 0]] * 3 and [set(p[1].tolist()) for p in out] == [{0}, {1}, {2}]
    with pytest.raises(ValueError, match=r"blur must be in \[0, 1\)"):
        blur_parts(parts, 1.0, torch.Generator())
    with pytest.raises(ConfigError, match="blur applies to blurry benchmarks only"):
        make_run_config(benchmark="split-mnist", strategy="naive", blur=0.2)
    with pytest.raises(ConfigError, match="blur"):
        make_run_config(benchmark="split-mnist-blurry", strategy="naive", blur=1.5)


# ---------------------------------------------------------------- the mini-experience cut


def _parts(*sizes):
    start, parts = 0, []
    for i, n in enumerate(sizes):
        ids = torch.arange(start, start + n)
        parts.append((ids.float().view(n, 1), torch.full((n,), i), torch.zeros(n, dtype=torch.long)))
        start += n
    return parts


def test_online_cut_per_experience_as_avalanche():
    stream = MiniStream(_parts(25, 12), size=10, across_boundaries=False, seed=0)
    minis = list(stream)
    assert [len(m) for m in minis] == [10, 10, 5, 10, 2]  # each experience cut on its own
    assert stream.stops() == [3, 5]
    assert [m.current_experience for m in minis] == [0, 1, 2, 3, 4]
    seen = torch.cat([m.tensors[0].view(-1) for m in minis])
    assert sorted(seen.tolist()) == list(range(37))  # every sample once, one pass
    assert set(torch.cat([m.tensors[1] for m in minis[:3]]).tolist()) == {0}  # no mixing across experiences
    again = [m.tensors[0] for m in MiniStream(_parts(25, 12), 10, False, seed=0)]
    assert all(torch.equal(a, m.tensors[0]) for a, m in zip(again, minis))  # seeded shuffle
    assert not torch.equal(seen[:25].sort().values, seen[:25])  # shuffled within the experience


def test_task_free_cut_spans_boundaries_with_equal_sizes():
    stream = MiniStream(_parts(25, 12, 13), size=10, across_boundaries=True, seed=0)
    minis = list(stream)
    assert [len(m) for m in minis] == [10, 10, 10, 10, 10]  # no short chunk marks a boundary
    # evaluation after the chunk holding each experience's last sample: samples 25, 37, 50
    assert stream.stops() == [3, 4, 5]
    assert set(minis[2].tensors[1].tolist()) == {0, 1}  # the chunk spanning the first boundary
    assert sorted(torch.cat([m.tensors[0].view(-1) for m in minis]).tolist()) == list(range(50))


def test_minis_carry_nothing_but_their_samples():
    minis = list(MiniStream(_parts(20, 20), size=10, across_boundaries=True, seed=0))
    names = {frozenset(vars(m)) for m in minis}
    assert len(names) == 1  # every mini-experience has the same attributes
    for attr in ("origin_experience", "is_first_subexp", "is_last_subexp", "sub_stream_length"):
        assert all(not hasattr(m, attr) for m in minis)


# ---------------------------------------------------------------- the protocol in configs


def test_online_and_task_free_default_to_batch_10_single_pass():
    assert make_run_config(benchmark="split-mnist", strategy="naive", online=True).batch_size == 10
    assert make_run_config(benchmark="split-mnist", strategy="naive", online="true", batch_size=32).batch_size == 32
    assert make_run_config(benchmark="split-mnist-blurry", strategy="naive").batch_size == 10
    assert make_run_config(benchmark="split-mnist", strategy="naive").batch_size == 128
    with pytest.raises(ConfigError, match="online protocol is a single pass: epochs must be 1"):
        make_run_config(benchmark="rotated-mnist", strategy="naive", online=True, epochs=2)
    with pytest.raises(ConfigError, match="task-free stream split-mnist-blurry is a single pass"):
        make_run_config(benchmark="split-mnist-blurry", strategy="naive", epochs=3)


def test_new_fields_leave_old_hashes_alone():
    plain = make_run_config(benchmark="split-mnist", strategy="naive")
    assert "online" not in plain.hashed_fields() and "blur" not in plain.hashed_fields()
    online = make_run_config(benchmark="split-mnist", strategy="naive", online=True)
    assert online.config_hash() != plain.config_hash()
