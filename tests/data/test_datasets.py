import numpy as np
import pytest
import torch

from bayesncl.data import datasets as ds
from bayesncl.data.idx import read_idx, write_idx

from ..fakedata import write_cifar, write_fashion_mnist, write_imagenet100


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_roundtrip(tmp_path, name):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, arr)
    assert np.array_equal(read_idx(tmp_path / name), arr)


def test_idx_rejects_garbage_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "t", np.zeros((4, 4), np.uint8))
    (tmp_path / "t").write_bytes((tmp_path / "t").read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "t")


def test_digits_split_is_fixed_and_disjoint():
    train, val = ds.load_digits(True, None, False), ds.load_digits(False, None, False)
    assert len(train) + len(val) == 1797
    img, label = train[0]
    assert img.shape == (1, 8, 8) and img.dtype == torch.uint8 and 0 <= label < 10


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_idx_files(tmp_path, monkeypatch, gz):
    monkeypatch.setattr(ds, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "nowhere")
    write_fashion_mnist(tmp_path, gz=gz)
    train = ds.load_fashion_mnist(True, tmp_path, False)
    test = ds.load_fashion_mnist(False, tmp_path, False)
    assert len(train) == 64 and len(test) == 32
    img, label = train[3]
    assert img.shape == (1, 28, 28) and label == 3


def test_missing_dataset_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "nowhere")
    with pytest.raises(
        ds.DatasetNotFoundError, match=r"looked in: .*apt-get install dataset-fashion-mnist"
    ):
        ds.load_fashion_mnist(True, tmp_path, False)
    with pytest.raises(ds.DatasetNotFoundError, match=r"CIFAR10 not found in .*download=true"):
        ds.DATASETS["cifar10"].load(True, tmp_path, False)
    with pytest.raises(ds.DatasetNotFoundError, match="image folder"):
        ds.DATASETS["imagenet100"].load(True, tmp_path, False)


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_reads_torchvision_layout(tmp_path, name, classes):
    write_cifar(tmp_path, classes)
    train = ds.DATASETS[name].load(True, tmp_path, False)
    test = ds.DATASETS[name].load(False, tmp_path, False)
    assert len(train) == 100 and len(test) in (20, 100)
    img, label = train[0]
    assert img.size == (32, 32) and 0 <= label < classes


def test_imagenet100_is_restricted_to_the_class_list(tmp_path):
    write_imagenet100(tmp_path)
    train = ds.DATASETS["imagenet100"].load(True, tmp_path, False)
    wanted = sorted(ds.imagenet100_classes())
    assert len(ds.imagenet100_classes()) == 100
    assert "n99999999" not in train.classes and len(train.classes) == 3
    assert len(train) == 12
    assert set(train.targets) == {wanted.index(c) for c in train.classes}  # labels index all 100


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset='mnist'"):
        ds.get_dataset_spec("mnist")


def test_class_names_come_from_the_data_else_the_spec(tmp_path):
    """Issue 16: the name of each label. CIFAR: its meta file; ImageNet-100 with 3 of its 100
    folders: each WordNet ID at its label among the 100; digits/F-MNIST: the spec's."""
    write_cifar(tmp_path, 10)
    write_imagenet100(tmp_path)
    cifar = ds.DATASETS["cifar10"]
    assert ds.class_names(cifar, cifar.load(False, tmp_path, False)) == [f"c{i}" for i in range(10)]
    assert ds.class_names(cifar) == [str(i) for i in range(10)]  # not loaded: the labels
    inet = ds.DATASETS["imagenet100"]
    names = ds.class_names(inet, inet.load(True, tmp_path, False))
    wanted = sorted(ds.imagenet100_classes())
    assert len(names) == 100 and sum(n == str(i) for i, n in enumerate(names)) == 97  # absent
    for c in ds.imagenet100_classes()[:3]:
        assert names[wanted.index(c)] == c
    assert ds.class_names(ds.DATASETS["fashion-mnist"])[1] == "Trouser"
    assert ds.class_names(ds.DATASETS["digits"], ds.load_digits(False, tmp_path, False)) == [
        str(i) for i in range(10)
    ]
    assert ds.known_class_names(inet) == wanted
    assert ds.known_class_names(cifar) is None
