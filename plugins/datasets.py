"""The built-in datasets: the standard binarized MNIST, grey MNIST, the lecture's thresholded MNIST, and
stroke-drawn synthetic digits that need no download."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from app.core import hookimpl
from app.core.datasets import (
    DatasetSpec,
    DataSplit,
    RemoteFile,
    find_file,
    missing_data_message,
    read_amat,
    read_idx,
    read_npz,
)
from app.core.errors import DataError
from app.core.synthetic import synthetic_digits

_BINARIZED_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_{}.amat"
_MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/{}.gz",
    "https://storage.googleapis.com/cvdf-datasets/mnist/{}.gz",
)
# SHA-256 of the decompressed files, which match the official MD5 (IDX) and SHA-1 (.amat) of the originals.
BINARIZED_FILES = (
    RemoteFile("binarized_mnist_train.amat", (_BINARIZED_URL.format("train"),),
               "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d", 78400000),
    RemoteFile("binarized_mnist_valid.amat", (_BINARIZED_URL.format("valid"),),
               "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2", 15680000),
    RemoteFile("binarized_mnist_test.amat", (_BINARIZED_URL.format("test"),),
               "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c", 15680000),
)
MNIST_FILES = tuple(
    RemoteFile(name, tuple(u.format(name) for u in _MNIST_URLS), sha, size, gzipped=True)
    for name, sha, size in (
        ("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
        ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
        ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
        ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
    )
)
_SUBDIRS = ("binarized", "binarized-mnist", "mnist/binarized", "idx", "mnist", "mnist/idx")


def _check_split(split: str, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
    if split not in splits:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(splits)}")


@lru_cache(maxsize=4)
def _binarized_arrays(data_dir: Path) -> dict[str, np.ndarray]:
    npz = find_file(data_dir, ["binarized_mnist.npz"], _SUBDIRS)
    if npz is not None:
        arrays = read_npz(npz, ("train", "valid", "test"))
    else:
        arrays = {}
        for split in ("train", "valid", "test"):
            name = f"binarized_mnist_{split}.amat"
            path = find_file(data_dir, [name, name + ".gz"], _SUBDIRS)
            if path is None:
                raise DataError(missing_data_message(BINARIZED, data_dir, f"binarized_mnist.npz or {name}[.gz]"))
            arrays[split] = read_amat(path)
    for split, array in arrays.items():
        if array.shape[1:] != (28, 28) or array.max(initial=0) > 1:
            raise DataError(f"the binarized MNIST {split} split is not 28x28 binary images: shape {array.shape}")
    return arrays


def load_binarized(split: str, data_dir: Path) -> DataSplit:
    _check_split(split)
    return DataSplit(_binarized_arrays(Path(data_dir))[split][:, None].astype(np.uint8))


@lru_cache(maxsize=4)
def _mnist_arrays(data_dir: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        path = find_file(data_dir, [name + ".gz", name], _SUBDIRS)
        if path is None:
            raise DataError(missing_data_message(MNIST, data_dir, f"{name}[.gz]"))
        arrays[name] = read_idx(path)
    return arrays


def _mnist_split(split: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """train = the first 50,000 training images, valid = the last 10,000, test = the 10,000 test images."""
    _check_split(split)
    a = _mnist_arrays(Path(data_dir))
    if split == "test":
        return a["t10k-images-idx3-ubyte"], a["t10k-labels-idx1-ubyte"]
    images, labels = a["train-images-idx3-ubyte"], a["train-labels-idx1-ubyte"]
    sl = slice(0, 50000) if split == "train" else slice(50000, 60000)
    return images[sl], labels[sl]


def load_mnist(split: str, data_dir: Path) -> DataSplit:
    images, labels = _mnist_split(split, data_dir)
    return DataSplit(images[:, None].copy(), labels.astype(np.int64))


def load_mnist_threshold(split: str, data_dir: Path) -> DataSplit:
    images, labels = _mnist_split(split, data_dir)
    return DataSplit((images[:, None] > 127).astype(np.uint8), labels.astype(np.int64))


#: The seed of the labelled stochastic binarization: fixed once, so that every run sees the same binary images.
LABELLED_BINARIZATION_SEED = 20151
_LABELLED_SPLIT_SEEDS = {"train": 0, "valid": 1, "test": 2}


def load_binarized_labelled(split: str, data_dir: Path) -> DataSplit:
    """MNIST with its labels, every pixel drawn once as Bernoulli(intensity / 255) from a fixed seed per split."""
    images, labels = _mnist_split(split, data_dir)
    rng = np.random.default_rng([LABELLED_BINARIZATION_SEED, _LABELLED_SPLIT_SEEDS[split]])
    binary = (rng.random(images.shape, dtype=np.float32) * 255.0 < images).astype(np.uint8)
    return DataSplit(binary[:, None], labels.astype(np.int64))


SYNTHETIC_SIZES = {"train": 20000, "valid": 2000, "test": 2000}
_SYNTHETIC_SEEDS = {"train": 1, "valid": 2, "test": 3}


@lru_cache(maxsize=6)
def _synthetic(split: str) -> tuple[np.ndarray, np.ndarray]:
    return synthetic_digits(SYNTHETIC_SIZES[split], seed=_SYNTHETIC_SEEDS[split])


def load_synthetic(split: str, data_dir: Path) -> DataSplit:
    _check_split(split)
    images, labels = _synthetic(split)
    return DataSplit((images > 127).astype(np.uint8), labels)


def load_synthetic_grey(split: str, data_dir: Path) -> DataSplit:
    _check_split(split)
    images, labels = _synthetic(split)
    return DataSplit(images.copy(), labels)


BINARIZED = DatasetSpec(
    name="binarized-mnist",
    title="Binarized MNIST (standard)",
    description=(
        "The standard binarized MNIST of Larochelle & Murray (2011): 50,000 / 10,000 / 10,000 images, each pixel "
        "sampled once as Bernoulli(intensity). The benchmark of NADE, MADE, PixelRNN and PixelCNN (81.30 nats)."
    ),
    kind="binary",
    shape=(1, 28, 28),
    num_values=2,
    binarization="standard binarized MNIST (Larochelle & Murray, stochastic, fixed once)",
    load=load_binarized,
    files=BINARIZED_FILES,
    citation="Larochelle & Murray, The Neural Autoregressive Distribution Estimator, AISTATS 2011",
)
MNIST = DatasetSpec(
    name="mnist",
    title="MNIST (grey, 256 levels)",
    description="MNIST by LeCun & Cortes, 256 grey levels; train = first 50,000 training images, valid = last 10,000.",
    kind="grey",
    shape=(1, 28, 28),
    num_values=256,
    binarization="none (256 grey levels)",
    load=load_mnist,
    files=MNIST_FILES,
    has_labels=True,
    citation="LeCun, Bottou, Bengio & Haffner 1998; CC BY-SA 3.0",
)
MNIST_THRESHOLD = DatasetSpec(
    name="mnist-threshold",
    title="Thresholded MNIST (x/255 > 0.5)",
    description=(
        "MNIST binarized by a fixed threshold, as in the lecture's demos. Far easier than the standard "
        "binarized set (a PixelCNN scores about 59 nats here against about 81 there): never compare the two."
    ),
    kind="binary",
    shape=(1, 28, 28),
    num_values=2,
    binarization="threshold x/255 > 0.5 (the lecture's demos)",
    load=load_mnist_threshold,
    files=MNIST_FILES,
    has_labels=True,
)
BINARIZED_LABELLED = DatasetSpec(
    name="binarized-mnist-labelled",
    title="Binarized MNIST with labels (stochastic, seeded)",
    description=(
        "MNIST binarized the way the standard set was made (each pixel drawn once as Bernoulli(intensity), "
        "from a fixed seed), keeping the labels, which the standard set lacks: for the class-conditional and "
        "super-resolution models, so that a model trained on the standard set carries over. Train = the first "
        "50,000 training images, valid = the last 10,000, test = the 10,000 test images. The draws are not the "
        "standard set's, so its NLLs come close to binarized-mnist figures but are not the same benchmark."
    ),
    kind="binary",
    shape=(1, 28, 28),
    num_values=2,
    binarization=f"stochastic, Bernoulli(x/255) drawn once (seed {LABELLED_BINARIZATION_SEED}), with labels",
    load=load_binarized_labelled,
    files=MNIST_FILES,
    has_labels=True,
)
SYNTHETIC = DatasetSpec(
    name="synthetic-digits",
    title="Synthetic digits (offline, binary)",
    description=(
        "Digits drawn from pen strokes with random jitter, made on the fly: needs no download. For tests and "
        "offline demos; its NLL figures compare to nothing published."
    ),
    kind="binary",
    shape=(1, 28, 28),
    num_values=2,
    binarization="threshold at 0.5 of stroke-drawn grey digits (not MNIST)",
    load=load_synthetic,
    offline=True,
    has_labels=True,
)
SYNTHETIC_GREY = DatasetSpec(
    name="synthetic-digits-grey",
    title="Synthetic digits (offline, grey)",
    description="The synthetic digits with 256 grey levels (anti-aliased strokes): needs no download.",
    kind="grey",
    shape=(1, 28, 28),
    num_values=256,
    binarization="none (256 grey levels; not MNIST)",
    load=load_synthetic_grey,
    offline=True,
    has_labels=True,
)


@hookimpl
def ar_explorer_datasets():
    return [BINARIZED, BINARIZED_LABELLED, MNIST, MNIST_THRESHOLD, SYNTHETIC, SYNTHETIC_GREY]
