"""The three MNIST streams on the real data set: classes, sizes, task labels, validation split,
permutations and Avalanche compatibility. Each full stream is built once per module (the
train_per_experience subsets at the end use the synthetic data root)."""

import hashlib
from collections import Counter

import pytest
import torch

from benchmarks.data import MNIST
from benchmarks.scenarios import BENCHMARKS
from benchmarks.streams import build_benchmark

ALL_CLASSES = list(range(10))


def row_keys(x: torch.Tensor) -> list[bytes]:
    """An exact key per image (a digest of its float32 pixels)."""
    rows = x.reshape(len(x), -1).contiguous().numpy()
    return [hashlib.blake2b(r, digest_size=16).digest() for r in rows]


def sorted_pixel_keys(x: torch.Tensor) -> list[bytes]:
    """A key per image that does not change when its pixels are permuted (its sorted pixel values)."""
    return row_keys(x.reshape(len(x), -1).sort(1).values)


@pytest.fixture(scope="module")
def mnist(real_mnist):
    return real_mnist


@pytest.fixture(scope="module")
def mnist_keys(mnist):
    return {"train": row_keys(mnist.train_x), "test": set(row_keys(mnist.test_x))}


@pytest.fixture(scope="module")
def split(mnist):
    return build_benchmark("split-mnist", mnist, seed=0)


@pytest.fixture(scope="module")
def split_task(mnist):
    return build_benchmark("split-mnist-task", mnist, seed=0)


@pytest.fixture(scope="module")
def permuted(mnist):
    return build_benchmark("permuted-mnist", mnist, seed=0)


@pytest.fixture(scope="module")
def small(mnist):
    """A slice of real MNIST, for the seed comparisons that need several builds."""
    return MNIST(mnist.train_x[:1200], mnist.train_y[:1200], mnist.test_x[:200], mnist.test_y[:200], mnist.root)


def check_split_stream(bench, mnist, mnist_keys, groups, task_of):
    train_counts, test_counts = mnist.train_y.bincount(minlength=10), mnist.test_y.bincount(minlength=10)
    assert bench.n_experiences == len(groups)
    assert len(bench.valid_stream) == len(bench.test_stream) == len(groups)
    for i, classes in enumerate(groups):
        train, valid, test = bench.train_stream[i], bench.valid_stream[i], bench.test_stream[i]
        for exp in (train, valid, test):
            assert exp.classes_in_this_experience == classes
            assert exp.tensors[2].unique().tolist() == [task_of(i)]
        # train + valid hold exactly this experience's classes' MNIST training images
        counts = torch.cat([train.tensors[1], valid.tensors[1]]).bincount(minlength=10)
        assert counts[classes].tolist() == train_counts[classes].tolist()
        assert test.tensors[1].bincount(minlength=10)[classes].tolist() == test_counts[classes].tolist()
        assert len(test) == int(test_counts[classes].sum())
        in_exp = torch.isin(mnist.train_y, torch.tensor(classes))
        expected = Counter(k for k, keep in zip(mnist_keys["train"], in_exp.tolist()) if keep)
        train_keys, valid_keys = row_keys(train.tensors[0]), row_keys(valid.tensors[0])
        assert Counter(train_keys) + Counter(valid_keys) == expected
        assert not set(train_keys) & set(valid_keys)
        assert not set(valid_keys) & mnist_keys["test"]  # no test image is used for validation
        assert abs(len(valid) - 0.1 * (len(train) + len(valid))) <= 1


def test_split_mnist_class_incremental(split, mnist, mnist_keys):
    assert split.name == "split-mnist" and split.class_masks is None
    groups = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    check_split_stream(split, mnist, mnist_keys, groups, task_of=lambda i: 0)
    assert split.meta["classes_per_experience"] == groups


def test_split_mnist_task_incremental(split_task, split, mnist, mnist_keys):
    groups = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    check_split_stream(split_task, mnist, mnist_keys, groups, task_of=lambda i: i)
    expected = torch.zeros(5, 10, dtype=torch.bool)
    for i, classes in enumerate(groups):
        expected[i, classes] = True
    assert torch.equal(split_task.class_masks, expected)
    # Same seed: the same images as the class-incremental stream, only the task labels differ.
    for a, b in zip(split_task.valid_stream, split.valid_stream):
        assert torch.equal(a.tensors[0], b.tensors[0]) and torch.equal(a.tensors[1], b.tensors[1])


def test_split_mnist_two_experiences(mnist, mnist_keys):
    bench = build_benchmark("split-mnist", mnist, seed=0, n_experiences=2)
    check_split_stream(bench, mnist, mnist_keys, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]], task_of=lambda i: 0)


def test_split_rejects_experience_counts_that_do_not_divide_10(small):
    with pytest.raises(ValueError, match="n_experiences must divide 10"):
        build_benchmark("split-mnist", small, seed=0, n_experiences=3)


def test_permuted_mnist_sizes_and_labels(permuted, mnist):
    assert permuted.n_experiences == 10 and permuted.class_masks is None
    train_counts = mnist.train_y.bincount(minlength=10)
    for i in range(10):
        train, valid, test = permuted.train_stream[i], permuted.valid_stream[i], permuted.test_stream[i]
        for exp in (train, valid, test):
            assert exp.classes_in_this_experience == ALL_CLASSES
            assert exp.tensors[2].unique().tolist() == [0]
            assert exp.tensors[0].shape[1:] == (1, 28, 28)
        assert torch.equal(torch.cat([train.tensors[1], valid.tensors[1]]).bincount(minlength=10), train_counts)
        assert abs(len(valid) - 6000) <= 1
        assert torch.equal(test.tensors[1], mnist.test_y)  # the test images, in order


def infer_permutation(permuted: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """p with ``permuted == original[:, p]``, matching pixel columns by content (columns equal in
    every image are interchangeable). Fails if no single permutation maps every image."""
    pool = {}
    for j, column in enumerate(original.T.contiguous().numpy()):
        pool.setdefault(column.tobytes(), []).append(j)
    p = torch.tensor([pool[column.tobytes()].pop() for column in permuted.T.contiguous().numpy()])
    assert torch.equal(permuted, original[:, p])
    return p


def test_permuted_mnist_permutes_pixels(permuted, mnist):
    rows = torch.arange(0, 10000, 50)
    original = mnist.test_x[rows].flatten(1)
    seen = []
    for i in range(10):
        x = permuted.test_stream[i].tensors[0][rows].flatten(1)
        assert torch.equal(x.sort(1).values, original.sort(1).values)  # same pixel values per image
        assert not torch.equal(x, original)  # the first experience is permuted too
        infer_permutation(x, original)  # one permutation, the same for every image of the experience
        assert all(not torch.equal(x, other) for other in seen)  # another one in every experience
        seen.append(x)


def test_permuted_train_and_valid_partition_mnist_train(small):
    """Up to the permutation, train + valid are exactly the training images, each once, and no
    validation image is a test image. Checked exhaustively on a slice of real MNIST (same code
    path as the full set, whose sizes and labels are checked above)."""
    bench = build_benchmark("permuted-mnist", small, seed=0)
    expected = Counter(sorted_pixel_keys(small.train_x))
    test_keys = set(sorted_pixel_keys(small.test_x))
    assert len(expected) == len(small.train_x) and len(test_keys) == len(small.test_x)  # the keys tell images apart
    for train, valid in zip(bench.train_stream, bench.valid_stream):
        train_keys, valid_keys = sorted_pixel_keys(train.tensors[0]), sorted_pixel_keys(valid.tensors[0])
        assert Counter(train_keys) + Counter(valid_keys) == expected
        assert not set(valid_keys) & test_keys
        assert len(valid) == 120


def test_same_seed_same_streams_other_seed_differs(small):
    for name, n_exp in (("split-mnist", 5), ("permuted-mnist", 3)):
        a = build_benchmark(name, small, seed=0, n_experiences=n_exp)
        b = build_benchmark(name, small, seed=0, n_experiences=n_exp)
        c = build_benchmark(name, small, seed=1, n_experiences=n_exp)
        for stream in ("train_stream", "valid_stream", "test_stream"):
            for ea, eb in zip(getattr(a, stream), getattr(b, stream)):
                assert all(torch.equal(ta, tb) for ta, tb in zip(ea.tensors, eb.tensors))
        # a different seed holds out other validation images (and, permuted, other permutations)
        assert any(not torch.equal(ea.tensors[0], ec.tensors[0]) for ea, ec in zip(a.valid_stream, c.valid_stream))
        if name == "permuted-mnist":
            for ea, ec in zip(a.test_stream, c.test_stream):
                assert not torch.equal(ea.tensors[0], ec.tensors[0])


def test_building_leaves_global_rng_untouched(small):
    state = torch.get_rng_state()
    build_benchmark("permuted-mnist", small, seed=3, n_experiences=2)
    build_benchmark("split-mnist", small, seed=3)
    assert torch.equal(torch.get_rng_state(), state)


def test_unknown_benchmark(small):
    with pytest.raises(
        ValueError,
        match="unknown benchmark 'cifar-10'; known: " + ", ".join(BENCHMARKS),
    ):
        build_benchmark("cifar-10", small, seed=0)


@pytest.mark.parametrize("name", ["split", "split_task", "permuted"])
def test_streams_are_avalanche_experiences(name, request):
    bench = request.getfixturevalue(name)
    for stream_name, stream in (
        ("train", bench.train_stream),
        ("valid", bench.valid_stream),
        ("test", bench.test_stream),
    ):
        assert stream.name == stream_name
        for i in (0, len(stream) - 1):
            exp = stream[i]
            x, y, t = exp.tensors
            assert exp.current_experience == i
            assert exp.origin_stream is stream
            assert len(exp.dataset) == len(exp) == len(y) == len(x) == len(t)
            for j in (0, len(y) - 1):
                sx, sy, st = exp.dataset[j]
                assert torch.equal(sx, x[j]) and int(sy) == int(y[j]) and int(st) == int(t[j])
    if name == "split_task":
        assert set(bench.test_stream[3].dataset.targets_task_labels) == {3}


@pytest.mark.parametrize("name", ["split-mnist", "permuted-mnist"])
def test_train_per_experience_subsets_training_data_only(name, synthetic_mnist):
    full = build_benchmark(name, synthetic_mnist, seed=0, n_experiences=2)
    sub = build_benchmark(name, synthetic_mnist, seed=0, n_experiences=2, train_per_experience=20)
    again = build_benchmark(name, synthetic_mnist, seed=0, n_experiences=2, train_per_experience=20)
    for f, s, a in zip(full.train_stream, sub.train_stream, again.train_stream):
        assert len(f) > 20 and len(s) == 20
        assert set(row_keys(s.tensors[0])) <= set(row_keys(f.tensors[0]))  # a subset of the full training data
        assert all(torch.equal(u, v) for u, v in zip(s.tensors, a.tensors))  # drawn from the seed
    for f, s in zip(full.valid_stream, sub.valid_stream):  # validation and test are unaffected
        assert torch.equal(f.tensors[0], s.tensors[0])
    for f, s in zip(full.test_stream, sub.test_stream):
        assert torch.equal(f.tensors[0], s.tensors[0])


def test_train_per_experience_enters_the_config_hash_only_when_set():
    from benchmarks.config import RunConfig

    plain = RunConfig(benchmark="split-mnist", strategy="naive")
    assert "train_per_experience" not in plain.hashed_fields()  # results stored before the field existed stay valid
    limited = RunConfig(benchmark="split-mnist", strategy="naive", train_per_experience=100)
    assert limited.hashed_fields()["train_per_experience"] == 100
    assert limited.config_hash() != plain.config_hash()
