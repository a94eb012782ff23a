import pytest
import torch

from bayesncl.data.augment import GRAYSCALE_AUGMENT, SIMCLR_AUGMENT, view_transform
from bayesncl.data.batch_augment import BatchAugment
from bayesncl.data.datasets import load_digits
from bayesncl.data.views import EpochSampler, MultiViewDataset


def test_sampler_is_a_function_of_seed_and_epoch():
    s = EpochSampler(100, 8, seed=3)
    s.set_epoch(1)
    a = list(s)
    assert list(s) == a
    s.set_epoch(2)
    assert list(s) != a
    assert len(a) == 96 and len({i for _, i in a}) == 96 and all(e == 1 for e, _ in a)


def test_sampler_ranks_are_disjoint_and_equal_sized():
    parts = [list(EpochSampler(50, 4, seed=0, rank=r, world_size=3)) for r in range(3)]
    assert all(len(p) == 16 for p in parts)
    flat = [i for p in parts for _, i in p]
    assert len(set(flat)) == 48


def test_sampler_skip_resumes_the_tail_of_its_epoch_only():
    s = EpochSampler(40, 5)
    s.set_epoch(2)
    full = list(s)
    s.skip = (2, 3)
    assert list(s) == full[15:]
    s.set_epoch(3)
    assert len(list(s)) == 40  # other epochs are whole


def test_sampler_rejects_batch_larger_than_data():
    with pytest.raises(ValueError, match=r"data\.batch_size=64"):
        EpochSampler(10, 64)


def test_multiview_is_deterministic_per_epoch_and_index():
    ds = MultiViewDataset(
        load_digits(True, None, False), view_transform(GRAYSCALE_AUGMENT, 8, (0.3,), (0.37,)), 3
    )
    i, views, _ = ds[(0, 5)]
    assert i == 5 and len(views) == 3 and views[0].shape == (1, 8, 8)
    assert not torch.equal(views[0], views[1])
    _, again, _ = ds[(0, 5)]
    assert all(torch.equal(a, b) for a, b in zip(views, again))
    _, other_epoch, _ = ds[(1, 5)]
    assert not torch.equal(views[0], other_epoch[0])
    with pytest.raises(ValueError, match="num_views"):
        MultiViewDataset(ds.base, ds.transform, 0)


def test_rgb_view_transform_shape():
    from PIL import Image

    t = view_transform(SIMCLR_AUGMENT, 32, (0.5,) * 3, (0.25,) * 3)
    out = t(Image.new("RGB", (32, 32), (100, 150, 200)))
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32


@pytest.mark.parametrize("channels", [1, 3])
def test_batch_augment(channels):
    cfg = (
        GRAYSCALE_AUGMENT
        if channels == 1
        else SIMCLR_AUGMENT.__class__(**{**SIMCLR_AUGMENT.__dict__, "hue": 0.0})
    )
    aug = BatchAugment(cfg, 16, (0.5,) * channels, (0.25,) * channels)
    images = torch.randint(0, 256, (12, channels, 20, 20), dtype=torch.uint8)
    a = aug(images, torch.Generator().manual_seed(0))
    b = aug(images, torch.Generator().manual_seed(0))
    c = aug(images, torch.Generator().manual_seed(1))
    assert a.shape == (12, channels, 16, 16) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= (0 - 0.5) / 0.25 - 1e-5 and a.max() <= (1 - 0.5) / 0.25 + 1e-5


def test_batch_augment_identity_settings_reproduce_the_image():
    cfg = GRAYSCALE_AUGMENT.__class__(
        crop_scale_min=1.0, jitter_prob=0.0, blur_prob=0.0, flip_prob=0.0
    )
    aug = BatchAugment(cfg, 8, (0.0,), (1.0,))
    images = torch.rand(4, 1, 8, 8)
    # scale 1 with aspect ratio 1 would be exact; random ratios crop at most a few pixels
    out = aug(images, torch.Generator().manual_seed(0))
    assert (out - images).abs().mean() < 0.2


@pytest.mark.parametrize("subset", [False, True])
def test_batched_fetch_equals_per_item_collation(subset):
    from torch.utils.data import DataLoader, Subset, default_collate

    from bayesncl.data.datasets import TensorImages
    from bayesncl.data.views import IndexedImages

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (50, 7, 7), generator=g, dtype=torch.uint8).numpy()
    base = TensorImages(images, torch.randint(0, 3, (50,), generator=g).numpy())
    ds = IndexedImages(Subset(base, list(range(49, 9, -1))) if subset else base)
    sampler = EpochSampler(len(ds), 8, seed=3)
    loader = DataLoader(ds, batch_size=8, sampler=sampler, drop_last=True, collate_fn=ds.collate)
    batches = list(loader)
    assert len(batches) == len(ds) // 8
    keys = list(sampler)
    for b, batch in enumerate(batches):
        expected = default_collate([ds[k] for k in keys[8 * b : 8 * b + 8]])
        for got, want in zip(batch, expected, strict=True):
            assert got.dtype == want.dtype
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_batched_fetch_falls_back_for_per_item_datasets():
    from bayesncl.data.views import IndexedImages

    class Plain(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.full((1, 2, 2), i, dtype=torch.uint8), i % 2

    ds = IndexedImages(Plain())
    batch = ds.collate(ds.__getitems__([0, 2, 3]))
    assert batch[0].tolist() == [0, 2, 3] and batch[2].tolist() == [0, 0, 1]
    assert batch[1][:, 0, 0, 0].tolist() == [0, 2, 3]


@pytest.mark.parametrize("channels", [1, 3])
def test_views_in_one_batch_equal_views_one_at_a_time(channels):
    from dataclasses import replace

    cfg = GRAYSCALE_AUGMENT if channels == 1 else replace(SIMCLR_AUGMENT, hue=0.0)
    aug = BatchAugment(cfg, 16, (0.5,) * channels, (0.25,) * channels)
    x = torch.randint(0, 256, (12, channels, 16, 16), dtype=torch.uint8)
    joined = aug.views(x, torch.Generator().manual_seed(4), 3)
    g = torch.Generator().manual_seed(4)
    for got in joined:
        assert torch.equal(got, aug(x, g))  # bit-identical: same draws, per-image ops
