"""The MMNCL text modality (ncl-extras-spec §4.3 M2): tokenizer and bag-of-words tower."""

from __future__ import annotations

import pytest
import torch

from bayesncl.models.text import PAD, UNK, TextTower, Tokenizer, split_words

CAPTIONS = [
    "A dark small wide bag.",
    "a light large tall Trouser",
    "a dark large tall trouser",
]


def test_split_words_lowercases_and_drops_punctuation():
    assert split_words("A Dark, small-wide BAG!") == ["a", "dark", "small", "wide", "bag"]


def test_fit_orders_by_count_then_alphabet_and_applies_min_count():
    tok = Tokenizer.fit(CAPTIONS, min_count=2, max_length=6)
    # counts: a 3; dark, large, tall, trouser 2; the rest 1 (dropped)
    assert tok.vocab == ["<pad>", "<unk>", "a", "dark", "large", "tall", "trouser"]
    assert Tokenizer.fit(reversed(CAPTIONS), min_count=2, max_length=6) == tok


def test_encode_maps_unknown_words_truncates_and_pads():
    tok = Tokenizer.fit(CAPTIONS, min_count=2, max_length=6)
    assert tok.encode("a dark wide trouser") == [2, 3, UNK, 6, PAD, PAD]
    assert tok.encode("a a a a a a a a") == [2] * 6
    assert tok(["a dark", ""]).tolist() == [[2, 3, 0, 0, 0, 0], [0] * 6]
    assert tok("tall").shape == (6,)
    assert tok.decode(tok("a dark wide")) == "a dark <unk>"


def test_tokenizer_round_trips_as_plain_data():
    tok = Tokenizer.fit(CAPTIONS, max_length=5)
    data = tok.to_dict()
    assert data == {"vocab": tok.vocab, "max_length": 5}
    assert all(isinstance(w, str) for w in data["vocab"])
    assert Tokenizer.from_dict(data) == tok


def test_tokenizer_errors_name_the_key():
    with pytest.raises(ValueError, match=r"missing \['max_length'\], unknown \['size'\]"):
        Tokenizer.from_dict({"vocab": ["<pad>", "<unk>"], "size": 3})
    with pytest.raises(ValueError, match="must start with '<pad>', '<unk>'"):
        Tokenizer(["a", "b"])
    with pytest.raises(ValueError, match="max_length=0"):
        Tokenizer(["<pad>", "<unk>"], 0)


def test_text_tower_averages_only_non_pad_embeddings():
    torch.manual_seed(0)
    tower = TextTower(vocab_size=10, embed_dim=4, hidden_dim=8, width=5)
    ids = torch.tensor([[2, 3, 3, 0, 0], [7, 0, 0, 0, 0]])
    weight = tower.embedding.weight
    expected = torch.stack([(weight[2] + 2 * weight[3]) / 3, weight[7]])
    torch.testing.assert_close(tower.embedding(ids), expected)
    out = tower(ids)
    assert out.shape == (2, 5) and tower.feature_dim == 5
    # padding length changes nothing
    torch.testing.assert_close(tower(ids[:, :3]), out)
    out.sum().backward()
    assert tower.embedding.weight.grad[PAD].abs().sum() == 0


def test_text_tower_rejects_flat_ids():
    with pytest.raises(ValueError, match=r"shape \(n, length\)"):
        TextTower(10)(torch.tensor([1, 2]))
