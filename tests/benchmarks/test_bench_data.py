"""benchmarks.data: IDX files, verification messages, data-root resolution, `epinet-bench data`."""

from pathlib import Path

import numpy as np
import pytest
import torch

import benchmarks.data as data
import benchmarks.runner
from benchmarks.cli import main
from benchmarks.data import (
    ENV_VAR,
    FILES,
    DataError,
    load_mnist,
    raw_dir,
    read_idx,
    resolve_root,
    verify_files,
    write_idx,
)

FOUR_FILES = list(FILES.values())


def test_idx_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    write_idx(tmp_path / "a" / "images", images)
    write_idx(tmp_path / "a" / "labels", labels)

    raw = (tmp_path / "a" / "images").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 3])  # unsigned bytes, 3 dimensions
    assert [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(3)] == [7, 28, 28]
    assert len(raw) == 16 + 7 * 28 * 28

    back = read_idx(tmp_path / "a" / "images")
    assert back.dtype == np.uint8 and back.shape == (7, 28, 28)
    np.testing.assert_array_equal(back, images)
    np.testing.assert_array_equal(read_idx(tmp_path / "a" / "labels"), labels)


def test_read_idx_rejects_truncated_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((5, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte holds 3926 bytes but its header \(5, 28, 28\) needs 3936: truncated"
    ):
        read_idx(path)
    path.write_bytes(path.read_bytes()[:9])  # cut inside the header
    with pytest.raises(DataError, match="train-images-idx3-ubyte is truncated: its header is incomplete"):
        read_idx(path)


def test_read_idx_rejects_non_idx_file(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(DataError, match="bad magic number"):
        read_idx(path)


def test_load_synthetic_root(synthetic_root, synthetic_mnist):
    m = synthetic_mnist
    assert m.root == synthetic_root
    assert m.train_x.shape == (300, 1, 28, 28) and m.train_x.dtype == torch.float32
    assert m.test_x.shape == (100, 1, 28, 28)
    assert m.train_y.dtype == torch.int64
    assert m.train_y.bincount().tolist() == [30] * 10 and m.test_y.bincount().tolist() == [10] * 10
    pixels = read_idx(raw_dir(synthetic_root) / FILES["train_images"])
    restored = (m.train_x[:, 0] * data.MNIST_STD + data.MNIST_MEAN) * 255
    np.testing.assert_allclose(restored.numpy(), pixels, atol=1e-3)
    assert m.train_y.tolist() == read_idx(raw_dir(synthetic_root) / FILES["train_labels"]).tolist()


def test_corrupt_file_named_with_sha_mismatch(make_data_root, tmp_path):
    root = make_data_root(tmp_path / "root")
    path = raw_dir(root) / "t10k-images-idx3-ubyte"
    blob = bytearray(path.read_bytes())
    blob[500] ^= 0xFF  # a pixel: the file still parses, only its checksum shows the damage
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError) as err:
        load_mnist(root, download=False)
    message = str(err.value)
    assert f"{path} is corrupt: SHA-256" in message
    assert data.sha256(path) in message  # the actual digest
    assert data.manifest(root)["t10k-images-idx3-ubyte"][1] in message  # the expected one


def test_truncated_file_against_canonical_sizes(make_data_root, tmp_path):
    """A root without SHA256SUMS is checked against the canonical release: the size check fires first."""
    root = make_data_root(tmp_path / "root", sums=False)
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte is 235216 bytes, expected 47040016: the file is truncated or not MNIST",
    ):
        verify_files(root)


def test_truncated_file_in_custom_root_is_caught(make_data_root, tmp_path):
    root = make_data_root(tmp_path / "root")
    path = raw_dir(root) / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match=f"{path} is corrupt: SHA-256"):
        load_mnist(root, download=False)


def test_sha256sums_must_list_all_four_files(make_data_root, tmp_path):
    root = make_data_root(tmp_path / "root")
    sums = root / "MNIST" / "SHA256SUMS"
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines() if "t10k-labels" not in line))
    with pytest.raises(DataError, match="does not list t10k-labels-idx1-ubyte"):
        load_mnist(root, download=False)


def test_cli_data_reports_a_good_root(synthetic_root, capsys):
    assert main(["data", "--data-root", str(synthetic_root), "--no-download"]) == 0
    out = capsys.readouterr().out
    assert f"data root: {synthetic_root}" in out
    assert "train: 300 images, test: 100 images, 28x28, checksums OK" in out
    assert "0:30, 1:30" in out


def test_cli_data_corrupt_file_exits_2(make_data_root, tmp_path, capsys):
    root = make_data_root(tmp_path / "root")
    path = raw_dir(root) / "train-labels-idx1-ubyte"
    blob = bytearray(path.read_bytes())
    blob[-1] = (blob[-1] + 1) % 10
    path.write_bytes(bytes(blob))
    assert main(["data", "--data-root", str(root), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "train-labels-idx1-ubyte is corrupt: SHA-256" in err
    assert "Traceback" not in err


def _assert_missing_message(err: str, root: Path):
    assert err.startswith(f"epinet-bench: error: MNIST not found under data root {root}: ")
    assert err.count("\n") == 1  # one line
    assert f"{', '.join(FOUR_FILES)} missing from {raw_dir(root)}" in err
    assert "--data-root" in err and ENV_VAR in err and "epinet-bench data --data-root DIR" in err
    assert "Traceback" not in err


def test_cli_data_missing_root_names_the_four_files(tmp_path, capsys, forbid):
    forbid(data, "_try_download", "--no-download must not try to download")
    root = tmp_path / "empty"
    assert main(["data", "--data-root", str(root), "--no-download"]) == 2
    captured = capsys.readouterr()
    _assert_missing_message(captured.err, root)
    assert "download attempt failed" not in captured.err
    assert captured.out == ""


def test_cli_run_missing_root_exits_2_before_training(tmp_path, capsys, forbid, run_argv):
    forbid(benchmarks.runner, "run", "training started although the data is missing")
    root = tmp_path / "empty"
    code = main(run_argv(root, tmp_path / "res"))
    assert code == 2
    err = capsys.readouterr().err
    _assert_missing_message(err, root)
    assert "download attempt" not in err  # only `epinet-bench data` downloads
    assert not list((tmp_path / "res").rglob("*.json"))


# ----------------------------------------------------------------------------- root resolution


def test_resolution_order_flag_then_env_then_default(tmp_path, monkeypatch):
    default, env, flag = tmp_path / "default", tmp_path / "env", tmp_path / "flag"
    monkeypatch.setattr(data, "default_root", lambda: default)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_root(None) == default
    monkeypatch.setenv(ENV_VAR, "")  # set but empty: ignored
    assert resolve_root(None) == default
    monkeypatch.setenv(ENV_VAR, str(env))
    assert resolve_root(None) == env
    assert resolve_root(str(flag)) == flag
    assert resolve_root(flag) == flag


def test_default_root_is_avalanches_dataset_location():
    from avalanche.benchmarks.datasets.dataset_utils import default_dataset_location

    assert data.default_root() == Path(default_dataset_location("")).expanduser()


def test_cli_uses_flag_over_env(synthetic_root, make_data_root, tmp_path, monkeypatch, capsys):
    other = make_data_root(tmp_path / "other", train_per_class=3, test_per_class=2)
    monkeypatch.setenv(ENV_VAR, str(other))
    assert main(["data", "--no-download"]) == 0
    assert f"data root: {other}\ntrain: 30 images, test: 20 images" in capsys.readouterr().out
    assert main(["data", "--no-download", "--data-root", str(synthetic_root)]) == 0
    assert f"data root: {synthetic_root}\ntrain: 300 images, test: 100 images" in capsys.readouterr().out


def test_sha256sums_in_binary_mode_format(make_data_root, tmp_path):
    """`sha256sum -b` writes "<hex> *<name>" (one space, then an asterisk); that is accepted too."""
    root = make_data_root(tmp_path / "root")
    sums = root / "MNIST" / "SHA256SUMS"
    sums.write_text(sums.read_text().replace("  ", " *"))
    assert data.manifest(root) == {n: (None, data.sha256(raw_dir(root) / n)) for n in FOUR_FILES}
    assert len(load_mnist(root, download=False).train_y) == 300
