"""A small text modality for MMNCL (ncl-extras-spec §4.3, M2): a word tokenizer whose vocabulary
is plain data (stored in checkpoints) and a bag-of-words tower (mean embedding -> MLP)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

PAD, UNK = 0, 1
PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def split_words(text: str) -> list[str]:
    """Lowercase words (letters/digits, an inner apostrophe kept); punctuation is dropped."""
    return _WORD.findall(text.lower())


class Tokenizer:
    """Words -> ids with PAD = 0 and UNK = 1, truncated/padded to ``max_length``.

    ``vocab`` lists every token by id, starting with ``<pad>`` and ``<unk>``. Build it from
    training captions with :meth:`fit`; :meth:`to_dict` / :meth:`from_dict` round-trip it as
    plain data (lists, ints), so it can be saved inside a checkpoint.
    """

    def __init__(self, vocab: Sequence[str], max_length: int = 16) -> None:
        vocab = list(vocab)
        if vocab[:2] != [PAD_TOKEN, UNK_TOKEN]:
            raise ValueError(
                f"tokenizer vocab must start with {PAD_TOKEN!r}, {UNK_TOKEN!r}, got {vocab[:2]}"
            )
        if len(set(vocab)) != len(vocab):
            dupes = sorted(w for w, c in Counter(vocab).items() if c > 1)
            raise ValueError(f"tokenizer vocab has duplicate words {dupes}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"tokenizer max_length={max_length!r} must be a positive integer")
        self.vocab = vocab
        self.max_length = max_length
        self.index = {word: i for i, word in enumerate(vocab)}

    @classmethod
    def fit(cls, captions: Iterable[str], min_count: int = 1, max_length: int = 16) -> Tokenizer:
        """Vocabulary of the words seen at least ``min_count`` times, most frequent first (ties
        alphabetical, so the ids do not depend on caption order)."""
        if min_count < 1:
            raise ValueError(f"tokenizer min_count={min_count!r} must be >= 1")
        counts = Counter(word for text in captions for word in split_words(text))
        words = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls([PAD_TOKEN, UNK_TOKEN, *words], max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``: unknown words -> UNK, cut at ``max_length``, padded with PAD."""
        ids = [self.index.get(word, UNK) for word in split_words(text)][: self.max_length]
        return ids + [PAD] * (self.max_length - len(ids))

    def __call__(self, texts: str | Sequence[str]) -> Tensor:
        """Long tensor (max_length,) for one text, (n, max_length) for a list."""
        if isinstance(texts, str):
            return torch.tensor(self.encode(texts), dtype=torch.long)
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.long).view(
            -1, self.max_length
        )

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """The words of ``ids`` without padding (UNK shown as ``<unk>``)."""
        return " ".join(self.vocab[int(i)] for i in ids if int(i) != PAD)

    def to_dict(self) -> dict[str, Any]:
        return {"vocab": list(self.vocab), "max_length": self.max_length}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tokenizer:
        """Inverse of :meth:`to_dict`; missing or unknown keys are errors that name them."""
        if not isinstance(data, Mapping):
            raise ValueError(f"tokenizer must be a mapping with vocab and max_length, got {data!r}")
        missing = {"vocab", "max_length"} - set(data)
        unknown = set(data) - {"vocab", "max_length"}
        if missing or unknown:
            raise ValueError(
                f"tokenizer settings: missing {sorted(missing)}, unknown {sorted(unknown)}; "
                "valid: vocab, max_length"
            )
        return cls(data["vocab"], data["max_length"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, max_length={self.max_length})"


class TextTower(nn.Module):
    """Token ids (n, L) -> mean of the non-PAD word embeddings -> Linear ReLU Linear -> (n, width).

    A caption of only PAD/empty text embeds to the zero vector. ``feature_dim`` is the output
    width (what :class:`~bayesncl.core.multimodal.TwoTower` needs as the backbone's width).
    """

    def __init__(
        self, vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128, width: int = 128
    ) -> None:
        super().__init__()
        if vocab_size < 2:
            raise ValueError(f"vocab_size={vocab_size!r} must include PAD and UNK (>= 2)")
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", padding_idx=PAD)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, width)
        )
        self.feature_dim = width

    def forward(self, ids: Tensor) -> Tensor:
        if ids.dim() != 2:
            raise ValueError(
                f"TextTower needs token ids of shape (n, length), got {tuple(ids.shape)}"
            )
        return self.mlp(self.embedding(ids))
