"""Paired data for MMNCL (ncl-extras-spec §4.3): pairs files, M1 edge pairs, M2 captions."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from bayesncl.data.errors import DataFileError
from bayesncl.data.paired import (
    CaptionThresholds,
    PairedCSV,
    fmnist_caption_pairs,
    fmnist_captions,
    fmnist_edge_pairs,
    sobel_edges,
)
from bayesncl.models.text import Tokenizer


def write_pngs(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image = np.zeros((28, 28), np.uint8)
        image[4:20, 4 + i : 10 + i] = 50 * (i + 1)
        Image.fromarray(image).save(folder / f"{i}.png")


def test_csv_pairs_are_read_relative_to_the_file(tmp_path):
    write_pngs(tmp_path / "img")
    (tmp_path / "pairs.csv").write_text(
        'file,text,y\nimg/0.png,a dark bag,8\nimg/1.png,"a light, tall coat",4\n'
    )
    ds = PairedCSV(
        tmp_path / "pairs.csv", image_key="file", caption_key="text", label_key="y", mode="L"
    )
    assert len(ds) == 2 and ds.captions == ["a dark bag", "a light, tall coat"]
    x, caption, label = ds[1]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert x.max().item() == pytest.approx(100 / 255) and (caption, label) == (
        "a light, tall coat",
        4,
    )
    tok = Tokenizer.fit(ds.captions, max_length=4)
    rgb = PairedCSV(tmp_path / "pairs.csv", "file", "text", tokenizer=tok)
    x, ids, label = rgb[0]
    assert x.shape == (3, 28, 28) and label == -1 and tok.decode(ids) == "a dark bag"


def test_jsonl_pairs_with_default_keys(tmp_path):
    write_pngs(tmp_path / "data" / "img")
    lines = [
        {"image": "img/2.png", "caption": "a wide top"},
        {},
        {"image": "img/0.png", "caption": "x"},
    ]
    text = "\n".join("" if not r else json.dumps(r) for r in lines) + "\n"
    (tmp_path / "data" / "pairs.jsonl").write_text(text)
    ds = PairedCSV(tmp_path / "data" / "pairs.jsonl")
    assert [r.line for r in ds.rows] == [1, 3]  # the blank line 2 is skipped
    x, caption, label = ds[0]
    assert x.shape == (3, 28, 28) and caption == "a wide top" and label == -1


def test_missing_column_names_file_and_line(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("image,text\na.png,hi\n")
    with pytest.raises(
        DataFileError,
        match=rf"{re.escape(str(path))} line 1: no caption column 'caption' "
        r"\(columns: image, text\)",
    ):
        PairedCSV(path)


def test_missing_key_and_bad_json_name_file_and_line(tmp_path):
    write_pngs(tmp_path, n=1)
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"image": "0.png", "caption": "hi"}\n{"image": "0.png"}\n')
    with pytest.raises(
        DataFileError, match=rf"{re.escape(str(path))} line 2: no key 'caption' \(has: image\)"
    ):
        PairedCSV(path)
    path.write_text('{"image": "0.png", "caption": "hi"}\n{oops\n')
    with pytest.raises(DataFileError, match=rf"{re.escape(str(path))} line 2: not valid JSON"):
        PairedCSV(path)


def test_missing_image_and_file_are_file_not_found(tmp_path):
    write_pngs(tmp_path / "img", n=1)
    path = tmp_path / "pairs.csv"
    path.write_text("image,caption\nimg/0.png,ok\nimg/9.png,gone\n")
    with pytest.raises(
        FileNotFoundError, match=rf"{re.escape(str(path))} line 3: image .*img/9.png does not exist"
    ):
        PairedCSV(path)
    with pytest.raises(FileNotFoundError, match=r"pairs file .*nope\.csv does not exist"):
        PairedCSV(tmp_path / "nope.csv")
    (tmp_path / "p.txt").write_text("")
    with pytest.raises(DataFileError, match=r"unknown format '\.txt'"):
        PairedCSV(tmp_path / "p.txt")


def test_unreadable_image_names_the_line(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    path = tmp_path / "pairs.csv"
    path.write_text("image,caption\nbad.png,hi\n")
    with pytest.raises(
        DataFileError, match=rf"{re.escape(str(path))} line 2: cannot read image .*bad.png"
    ):
        PairedCSV(path)[0]


def test_sobel_edges_of_a_step_and_a_flat_image():
    step = torch.zeros(1, 6, 6)
    step[:, :, 3:] = 1.0
    edges = sobel_edges(step)[0, 0]
    # Gx at the two columns next to the step = 4 (1 + 2 + 1), scaled by 1 / (4 sqrt 2)
    torch.testing.assert_close(edges[:, 2], torch.full((6,), 1 / 2**0.5))
    torch.testing.assert_close(edges[:, 3], torch.full((6,), 1 / 2**0.5))
    assert edges[:, [0, 1, 4, 5]].abs().max() == 0
    assert sobel_edges(torch.full((1, 5, 5), 0.7)).abs().max() < 1e-6


def test_edge_pairs_are_deterministic_and_labelled():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 28, 28)).astype(np.uint8)
    ds = fmnist_edge_pairs(images, torch.tensor([3, 1, 4, 1]))
    x, edges, label = ds[2]
    assert x.shape == edges.shape == (1, 28, 28) and label == 4
    torch.testing.assert_close(x, torch.from_numpy(images[2]).float()[None] / 255)
    torch.testing.assert_close(edges, fmnist_edge_pairs(images)[2][1])
    assert fmnist_edge_pairs(images)[0][2] == -1


def garment(top, left, height, width, value):
    image = np.zeros((28, 28), np.uint8)
    image[top : top + height, left : left + width] = value
    return image


def test_captions_measure_intensity_area_and_aspect():
    images = np.stack(
        [
            garment(2, 2, 20, 6, 60),  # tall, dark, area 120
            garment(2, 2, 6, 20, 250),  # wide, light, area 120
            garment(0, 0, 24, 24, 200),  # square (tall), light, area 576
            garment(0, 0, 5, 5, 40),  # square, dark, area 25
        ]
    )
    labels = [1, 8, 4, 9]
    # medians: intensity median of (60, 250, 200, 40)/255 = 130/255; area median = 120
    assert fmnist_captions(images, labels) == [
        "a dark large tall trouser",
        "a light large wide bag",
        "a light large tall coat",
        "a dark small tall ankle boot",
    ]
    fixed = CaptionThresholds(intensity=0.99, area=200.0)  # e.g. the training split's medians
    assert fmnist_captions(images[:2], labels[:2], fixed) == [
        "a dark small tall trouser",
        "a dark small wide bag",
    ]
    with pytest.raises(ValueError, match=r"labels \[10\] have no class name"):
        fmnist_captions(images[:1], [10])


def test_caption_pairs_yield_image_caption_label():
    images = np.stack([garment(2, 2, 20, 6, 60), garment(2, 2, 6, 20, 250)])
    ds = fmnist_caption_pairs(images, torch.tensor([1, 8]))
    x, caption, label = ds[1]
    assert x.shape == (1, 28, 28) and caption == "a light large wide bag" and label == 8
    tok = Tokenizer.fit(ds.pair)
    ids = fmnist_caption_pairs(images, [1, 8], tokenizer=tok)[0][1]
    assert tok.decode(ids) == "a dark large tall trouser"  # equal areas: both at the median
