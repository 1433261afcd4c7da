"""MNIST data root resolution, IDX reading and file verification.

The root is in torchvision layout: ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``.
Resolution order: ``--data-root`` flag, then ``EPINET_DATA_ROOT``, then Avalanche's default
dataset location.  Files are verified (size and SHA-256 of the canonical release) before a
single sample is trained on, so a truncated or corrupt download is reported, never used.
Only ``epinet-bench data`` tries torchvision's download of missing files; every other command
reports them at once, in one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported when tensors are made: checking files must stay fast
    import torch

ENV_VAR = "EPINET_DATA_ROOT"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
N_CLASSES = 10

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# (size in bytes, SHA-256) of the canonical MNIST release, uncompressed.
CANONICAL = {
    "train-images-idx3-ubyte": (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

_IDX_DTYPE_UBYTE = 0x08


class DataError(RuntimeError):
    """Missing, truncated or corrupt data; the message says what to do."""


@dataclass(frozen=True)
class MNIST:
    """Pre-loaded, normalised MNIST: images [N, 1, 28, 28] float32, labels [N] int64."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    root: Path


AVALANCHE_CONFIG = Path("~/.avalanche/config.json")


def default_root() -> Path:
    """Avalanche's default dataset location: ``dataset_location`` in ``~/.avalanche/config.json``,
    else ``~/.avalanche/data``. Read here rather than by importing Avalanche (10 s, and it writes
    that file): a test checks the two agree."""
    location = "~/.avalanche/data"
    try:
        location = json.loads(AVALANCHE_CONFIG.expanduser().read_text()).get("dataset_location", location)
    except (OSError, ValueError, AttributeError):
        pass
    return Path(location).expanduser()


def resolve_root(flag: str | os.PathLike | None = None) -> Path:
    if flag:
        return Path(flag).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return default_root()


def raw_dir(root: Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def missing_files(root: Path) -> list[str]:
    return [n for n in FILES.values() if not (raw_dir(root) / n).is_file()]


def missing_message(root: Path) -> str:
    """One line: which files are missing where, and the two ways to fix it."""
    missing = missing_files(root)
    what = "MNIST not found" if len(missing) == len(FILES) else "MNIST incomplete"
    return (
        f"{what} under data root {root}: {', '.join(missing)} missing from {raw_dir(root)}; point --data-root "
        f"or {ENV_VAR} at a directory holding MNIST/raw/ with the four uncompressed IDX files "
        f"({', '.join(FILES.values())}), or run `epinet-bench data --data-root DIR` to download them"
    )


def _try_download(root: Path) -> None:
    import torchvision

    for train in (True, False):
        torchvision.datasets.MNIST(str(root), train=train, download=True)


def _download_leaving_nothing_on_failure(root: Path) -> None:
    """torchvision creates ``<root>/MNIST/raw/`` before it fails: remove what it created."""
    created = [d for d in (Path(root), Path(root) / "MNIST", raw_dir(root)) if not d.exists()]
    try:
        _try_download(root)
    except BaseException:
        for directory in reversed(created):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        raise


def ensure_files(root: Path, download: bool = False) -> None:
    """Make sure the four raw files exist, trying torchvision's download if allowed (only
    ``epinet-bench data`` allows it: elsewhere a mistyped root is answered at once)."""
    if not missing_files(root):
        return
    if download:
        try:
            _download_leaving_nothing_on_failure(root)
        except Exception as err:  # any failure (no network, HTTP error) ends in the same advice
            raise DataError(f"{missing_message(root)} (download attempt failed: {err})") from None
        if not missing_files(root):
            return
    raise DataError(missing_message(root))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(root: Path) -> dict[str, tuple[int | None, str]]:
    """The checksums files are verified against: ``<root>/MNIST/SHA256SUMS`` if the root ships
    one (``sha256sum`` format; lets custom or test data roots declare their own files), else
    the canonical MNIST release's sizes and digests."""
    sums = Path(root) / "MNIST" / "SHA256SUMS"
    if not sums.is_file():
        return CANONICAL
    listed = {}
    for line in sums.read_text().splitlines():
        # "<hex>  <name>" (text mode) or "<hex> *<name>" (binary mode, `sha256sum -b`)
        digest, _, name = line.strip().partition(" ")
        name = name.removeprefix(" ").removeprefix("*")
        if digest and name:
            listed[name] = (None, digest.lower())
    missing = [n for n in FILES.values() if n not in listed]
    if missing:
        raise DataError(f"{sums} does not list {', '.join(missing)}")
    return listed


def verify_files(root: Path, expected: dict[str, tuple[int | None, str]] | None = None) -> dict[str, str]:
    """Check every file's size and SHA-256; return the digests.

    ``expected`` defaults to ``manifest(root)``. The IDX header is checked against the file
    length again when a file is read.
    """
    expected = manifest(root) if expected is None else expected
    digests = {}
    for name in FILES.values():
        path = raw_dir(root) / name
        size, digest = expected[name]
        actual_size = path.stat().st_size
        if size is not None and actual_size != size:
            raise DataError(
                f"{path} is {actual_size} bytes, expected {size}: the file is truncated or not MNIST. "
                f"Delete it and restore the original file (custom data roots list their files in MNIST/SHA256SUMS)."
            )
        actual = sha256(path)
        if actual != digest:
            raise DataError(
                f"{path} is corrupt: SHA-256 {actual}, expected {digest}. Delete it and restore the original file."
            )
        digests[name] = actual
    return digests


def read_idx(path: Path) -> np.ndarray:
    """Read an unsigned-byte IDX file (the MNIST format) into a numpy array."""
    data = Path(path).read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_DTYPE_UBYTE:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number).")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated: its header is incomplete.")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(
            f"{path} holds {len(data)} bytes but its header {shape} needs {expected}: truncated or corrupt."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (used by tests to make small data roots)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _IDX_DTYPE_UBYTE, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(header + array.tobytes())


def normalise(images: np.ndarray) -> torch.Tensor:
    import torch

    x = torch.from_numpy(images.copy()).float().div_(255.0)
    return x.sub_(MNIST_MEAN).div_(MNIST_STD).unsqueeze(1)


def unit_scaled(data: MNIST) -> MNIST:
    """``data`` with pixels back in [0, 1] (x / 255, no standardisation), the input scale of
    Mammoth and of the DER paper's MNIST protocols."""
    return dataclasses.replace(
        data, train_x=data.train_x * MNIST_STD + MNIST_MEAN, test_x=data.test_x * MNIST_STD + MNIST_MEAN
    )


def check_root(root: str | os.PathLike | None = None, *, download: bool = False) -> Path:
    """Resolve the root and verify its files (no torch import): the check before any work."""
    root = resolve_root(root)
    ensure_files(root, download=download)
    verify_files(root)
    return root


def read_arrays(root: Path) -> dict[str, np.ndarray]:
    """The four files as arrays, checked for consistent counts, 28x28 images and labels 0-9."""
    arrays = {key: read_idx(raw_dir(root) / name) for key, name in FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{split} split has {len(images)} images but {len(labels)} labels.")
        if images.shape[1:] != (28, 28):
            raise DataError(f"{split} images are {images.shape[1:]}, expected 28x28.")
        if labels.ndim != 1:
            raise DataError(
                f"{raw_dir(root) / FILES[f'{split}_labels']} has shape {labels.shape}, expected one label per image."
            )
        bad = np.flatnonzero(labels >= N_CLASSES)
        if len(bad):
            raise DataError(
                f"{raw_dir(root) / FILES[f'{split}_labels']}: label {int(labels[bad[0]])} at index {int(bad[0])}"
                f" is out of range 0-{N_CLASSES - 1}"
                f" ({len(bad)} such labels)."
            )
    return arrays


def load_mnist(root: str | os.PathLike | None = None, *, download: bool = False) -> MNIST:
    """Resolve, verify and load MNIST as normalised tensors. Raises DataError with advice."""
    root = check_root(root, download=download)
    return tensors_from(read_arrays(root), root)


def tensors_from(arrays: dict[str, np.ndarray], root: Path) -> MNIST:
    """``read_arrays``' checked arrays as normalised tensors (what ``load_mnist`` returns)."""
    import torch

    return MNIST(
        train_x=normalise(arrays["train_images"]),
        train_y=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        test_x=normalise(arrays["test_images"]),
        test_y=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        root=root,
    )
