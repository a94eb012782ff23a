"""Issue 18, data part: nothing lost, nothing silently wrong.

Item 6 (one class list for all image-folder splits), item 7 (images and labels of different
lengths), item 11 (meaningless data options; the system Fashion-MNIST fallback is announced) and
item 12 (corrupt IDX, CIFAR and image files name the file; ``skip_corrupt``; ``num_classes``
below the class folders).
"""

from __future__ import annotations

import gzip
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from torch._utils import ExceptionWrapper

from bayesncl.data import datasets as ds
from bayesncl.data.errors import DataFileError
from bayesncl.data.idx import read_idx, write_idx
from bayesncl.train.datamodule import SSLDataModule

from ..fakedata import (
    truncate_file,
    write_cifar,
    write_fashion_mnist,
    write_image_folder,
    write_imagenet100,
)


def _label_of_folder(dataset, folder: str) -> set[int]:
    return {label for path, label in dataset.samples if Path(path).parent.name == folder}


# --- item 6: one class list, from train ---------------------------------------------------------


def test_val_split_without_a_class_keeps_the_train_labels(tmp_path):
    write_image_folder(tmp_path, ["a", "b", "c", "d"], per_class=2, size=8)
    shutil.rmtree(tmp_path / "val" / "b")
    load = ds.DATASETS["imagefolder"].load
    train, val = load(True, tmp_path, False), load(False, tmp_path, False)
    assert [_label_of_folder(train, c) for c in "abcd"] == [{0}, {1}, {2}, {3}]
    assert _label_of_folder(val, "c") == {2} and _label_of_folder(val, "d") == {3}
    first_c = next(i for i, (p, _) in enumerate(val.samples) if Path(p).parent.name == "c")
    assert val[first_c][1] == 2 and sorted(set(val.targets)) == [0, 2, 3]


def test_val_class_unknown_to_train_is_an_error_naming_the_folder(tmp_path):
    write_image_folder(tmp_path, ["a", "b"], per_class=1, size=8)
    shutil.copytree(tmp_path / "val" / "b", tmp_path / "val" / "zebra")
    with pytest.raises(DataFileError, match=r"val/zebra of the validation split is not a class"):
        ds.DATASETS["imagefolder"].load(False, tmp_path, False)


def test_imagenet100_val_class_unknown_to_train_is_an_error(tmp_path):
    write_imagenet100(tmp_path, n_classes=2, per_class=1)
    extra = ds.imagenet100_classes()[5]  # an ImageNet-100 class that train does not have
    shutil.copytree(tmp_path / "val" / ds.imagenet100_classes()[0], tmp_path / "val" / extra)
    with pytest.raises(DataFileError, match=f"val/{extra} of the validation split"):
        ds.DATASETS["imagenet100"].load(False, tmp_path, False)
    shutil.rmtree(tmp_path / "val" / extra)
    val = ds.DATASETS["imagenet100"].load(False, tmp_path, False)  # n99999999 stays ignored
    wanted = sorted(ds.imagenet100_classes())
    assert set(val.targets) == {wanted.index(c) for c in ds.imagenet100_classes()[:2]}


def test_val_split_needs_the_train_split_for_its_classes(tmp_path):
    write_image_folder(tmp_path, ["a"], per_class=1, size=8)
    shutil.rmtree(tmp_path / "train")
    with pytest.raises(ds.DatasetNotFoundError, match=r"image folder .*train not found"):
        ds.DATASETS["imagefolder"].load(False, tmp_path, False)


# --- item 7: images and labels that are not a pair ----------------------------------------------


def test_idx_images_and_labels_of_different_lengths_name_both_files(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "nowhere")
    raw = write_fashion_mnist(tmp_path) / "FashionMNIST" / "raw"
    shutil.copy(raw / "t10k-labels-idx1-ubyte.gz", raw / "train-labels-idx1-ubyte.gz")
    images, labels = raw / "train-images-idx3-ubyte.gz", raw / "train-labels-idx1-ubyte.gz"
    expected = f"{images} holds 64 images but {labels} holds 32 labels"
    with pytest.raises(DataFileError, match=re.escape(expected)):
        ds.load_fashion_mnist(True, tmp_path, False)


def test_idx_swapped_or_foreign_label_files_are_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "nowhere")
    raw = write_fashion_mnist(tmp_path, gz=False) / "FashionMNIST" / "raw"
    labels = raw / "train-labels-idx1-ubyte"
    shutil.copy(raw / "train-images-idx3-ubyte", labels)
    with pytest.raises(DataFileError, match=re.escape(f"{labels}: expected labels (n)")):
        ds.load_fashion_mnist(True, tmp_path, False)
    write_idx(labels, np.full(64, 12, np.uint8))  # labels of a 13+-class dataset
    with pytest.raises(DataFileError, match=re.escape(f"{labels}: labels range over 12..12")):
        ds.load_fashion_mnist(True, tmp_path, False)


def test_idx_half_a_pair_is_an_error_not_a_silent_fallback(tmp_path, monkeypatch):
    system = write_fashion_mnist(tmp_path / "system") / "FashionMNIST" / "raw"
    monkeypatch.setattr(ds, "FASHION_MNIST_SYSTEM_DIR", system)
    raw = write_fashion_mnist(tmp_path / "mine") / "FashionMNIST" / "raw"
    (raw / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        ds.DatasetNotFoundError,
        match=re.escape(f"{raw / 'train-images-idx3-ubyte.gz'} is there but its partner"),
    ):
        ds.load_fashion_mnist(True, tmp_path / "mine", False)


def test_cifar_batch_with_fewer_labels_than_images_names_the_file(tmp_path):
    write_cifar(tmp_path, 10)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    entry = pickle.loads(path.read_bytes())
    entry["labels"] = entry["labels"][:-1]
    path.write_bytes(pickle.dumps(entry))
    with pytest.raises(DataFileError, match=re.escape(f"{path} holds 20 images but 19 labels")):
        ds.DATASETS["cifar10"].load(True, tmp_path, False)
    ds.DATASETS["cifar10"].load(False, tmp_path, False)  # the test split is fine


# --- item 12: corrupt files name the file -------------------------------------------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(s.to_bytes(4, "big") for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


GOOD = _idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
ODD = b"\x00\x00\x0c\x01" + (2).to_bytes(4, "big") + b"\x00" * 7  # 2 int32 = 8 bytes, holds 7

BAD_IDX = {  # name -> (file name, bytes, words of the message)
    "truncated gzip": ("a-ubyte.gz", gzip.compress(GOOD)[:-12], "corrupt or truncated gzip"),
    "garbage gzip": ("a-ubyte.gz", b"\x1f\x8b" + b"\x00" * 30, "corrupt or truncated gzip"),
    "not gzip at all": ("a-ubyte.gz", b"<html>404 Not Found</html>", "not gzip-compressed"),
    "wrong magic": ("a-ubyte", b"\x00\x00\x07\x03" + GOOD[4:], "is not an IDX file"),
    "empty": ("a-ubyte", b"", "is not an IDX file"),
    "header cut short": ("a-ubyte", GOOD[:9], "header of 3 dimensions cut short"),
    "data cut short": ("a-ubyte", GOOD[:-7], "truncated?"),
    "data too long": ("a-ubyte", GOOD + b"\x00" * 3, "3 bytes more"),
    "odd size >i4": ("a-ubyte", ODD, "truncated?"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_IDX))
def test_corrupt_idx_files_are_errors_naming_the_file(tmp_path, case):
    name, raw, words = BAD_IDX[case]
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(DataFileError, match=rf"^{re.escape(str(path))}.*{re.escape(words)}"):
        read_idx(path)


def test_good_idx_reads_whether_or_not_named_gz(tmp_path):
    (tmp_path / "plain").write_bytes(gzip.compress(GOOD))  # gzip without the .gz name
    assert read_idx(tmp_path / "plain").shape == (3, 4, 5)


def test_truncated_fashion_mnist_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "nowhere")
    raw = write_fashion_mnist(tmp_path) / "FashionMNIST" / "raw"
    path = truncate_file(raw / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(DataFileError, match=re.escape(f"{path}: corrupt or truncated gzip")):
        ds.load_fashion_mnist(False, tmp_path, False)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_truncated_or_foreign_cifar_files_name_the_file(tmp_path, name):
    write_cifar(tmp_path, 10 if name == "cifar10" else 100)
    folder = tmp_path / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    path = truncate_file(folder / ("test_batch" if name == "cifar10" else "test"))
    with pytest.raises(DataFileError, match=re.escape(f"{path}: not a readable CIFAR python")):
        ds.DATASETS[name].load(False, tmp_path, False)
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}))
    with pytest.raises(DataFileError, match=re.escape(f"{path}: 'data' is uint8 of shape (2, 10)")):
        ds.DATASETS[name].load(False, tmp_path, False)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataFileError, match=re.escape(f"{path}: not a CIFAR python file")):
        ds.DATASETS[name].load(False, tmp_path, False)


def test_missing_cifar_file_is_named(tmp_path):
    write_cifar(tmp_path, 10)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(ds.DatasetNotFoundError, match=r"CIFAR10 not found in .*data_batch_4"):
        ds.DATASETS["cifar10"].load(True, tmp_path, False)


def _corrupt_two(root):
    """Class a: image 0 truncated; class b: image 1 empty. Returns their paths."""
    bad_a = truncate_file(root / "train" / "a" / "0.png", 0.4)
    bad_b = root / "train" / "b" / "1.png"
    bad_b.write_bytes(b"")
    return bad_a, bad_b


def test_truncated_or_empty_images_are_errors_naming_the_file(tmp_path):
    write_image_folder(tmp_path, ["a", "b"], per_class=2, size=8)
    bad_a, bad_b = _corrupt_two(tmp_path)
    train = ds.DATASETS["imagefolder"].load(True, tmp_path, False)
    assert len(train) == 4  # found, not read, when the split is listed
    assert train[1][0].size == (16, 8)
    for i, path in ((0, bad_a), (3, bad_b)):
        with pytest.raises(
            DataFileError, match=rf"^{re.escape(str(path))}: unreadable image .*skip_corrupt=true"
        ):
            train[i]


def test_unreadable_image_in_a_loader_worker_keeps_a_one_line_message(tmp_path):
    # a DataLoader worker's error reaches the main process through torch's ExceptionWrapper,
    # which rebuilds it as DataFileError("Caught DataFileError in DataLoader worker ...
    # Original Traceback ..."); (a real worker would cost 5 s here: its shutdown waits)
    write_image_folder(tmp_path, ["a", "b"], per_class=2, size=8)
    bad_a, _ = _corrupt_two(tmp_path)
    train = ds.DATASETS["imagefolder"].load(True, tmp_path, False)
    try:
        train[0]
    except DataFileError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(DataFileError) as info:
        wrapped.reraise()
    message = str(info.value)
    assert message.startswith(f"{bad_a}: unreadable image") and "\n" not in message
    assert message.endswith("(in a data loader worker)")


def test_skip_corrupt_skips_and_counts(tmp_path, capfd):
    write_image_folder(tmp_path, ["a", "b"], per_class=2, size=8)
    bad_a, bad_b = _corrupt_two(tmp_path)
    dm = SSLDataModule("imagefolder", str(tmp_path), num_classes=2, skip_corrupt=True, image_size=8)
    train = dm.load(True)
    items = [train[i] for i in range(len(train))] + [train[0]]
    # an unreadable image is replaced by the next readable one of the split
    assert [label for _, label in items] == [0, 0, 1, 0, 0]
    assert np.array_equal(np.asarray(items[0][0]), np.asarray(items[1][0]))
    assert train.skipped == {bad_a, bad_b}
    err = capfd.readouterr().err
    assert f"skipped unreadable image {bad_a}" in err and "1 skipped so far" in err
    assert f"skipped unreadable image {bad_b}" in err and "2 skipped so far" in err
    assert err.count("skipped unreadable") == 2  # each file reported once


def test_skip_corrupt_is_for_image_folders_only():
    with pytest.raises(ValueError, match=r"data\.skip_corrupt applies to image folders"):
        SSLDataModule("digits", skip_corrupt=True)


def test_num_classes_below_the_class_folders_is_an_error(tmp_path):
    write_image_folder(tmp_path, ["a", "b", "c", "d"], per_class=1, size=8)
    with pytest.raises(ValueError, match=r"data.num_classes=3 but .*train has 4 class folders"):
        SSLDataModule("imagefolder", str(tmp_path), num_classes=3)  # at start-up
    assert len(SSLDataModule("imagefolder", str(tmp_path), num_classes=4).load(True)) == 4
    with pytest.raises(ValueError, match=r"data\.num_classes=10 is smaller than the 100 classes"):
        SSLDataModule("imagenet100", str(tmp_path), num_classes=10)


# --- item 11: options that mean nothing; the system copy is announced ---------------------------


@pytest.mark.parametrize(
    "key,value",
    [("train_subset", -1000), ("train_subset", 0), ("val_subset", 0), ("image_size", 0)],
)
def test_meaningless_data_options_are_errors(key, value):
    with pytest.raises(ValueError, match=rf"data.{key}={value} must be >= 1"):
        SSLDataModule("digits", **{key: value})


def test_fashion_mnist_fallback_to_the_system_copy_says_which_files(tmp_path, monkeypatch, capfd):
    system = write_fashion_mnist(tmp_path / "system", gz=True) / "FashionMNIST" / "raw"
    monkeypatch.setattr(ds, "FASHION_MNIST_SYSTEM_DIR", system)
    train = ds.load_fashion_mnist(True, tmp_path / "empty", False)
    assert len(train) == 64
    err = capfd.readouterr().err.strip()
    assert err == (
        f"bayesncl: fashion-mnist: no train files in data.data_dir={tmp_path / 'empty'}; using "
        f"the system copy {system / 'train-images-idx3-ubyte.gz'} and "
        f"{system / 'train-labels-idx1-ubyte.gz'}"
    )
    ds.load_fashion_mnist(True, tmp_path / "system", False)  # data_dir holds the files: silent
    assert capfd.readouterr().err == ""
