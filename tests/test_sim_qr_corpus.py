"""The seeded corpus of camera frames: deterministic, every class, realistic content."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.iin import is_valid_iin
from simulators.qr_corpus import KINDS, SIZES, corpus, sample


def test_the_same_seed_gives_the_same_frames_and_another_seed_others():
    one = sample("glare", (640, 480), 0, seed=3)
    two = sample("glare", (640, 480), 0, seed=3)
    assert np.array_equal(one.gray, two.gray) and one.expected == two.expected
    other = sample("glare", (640, 480), 0, seed=4)
    assert not np.array_equal(one.gray, other.gray)


def test_every_class_at_every_size_with_its_expected_text():
    frames = list(corpus(1, sizes=((640, 480),), seed=1))
    assert [f.kind for f in frames] == list(KINDS)
    assert all(f.gray.shape == (480, 640) and f.gray.dtype == np.uint8 for f in frames)
    assert SIZES == ((640, 480), (1280, 720), (1920, 1080))
    assert frames[0].label == "plain/640x480/0"


def test_the_codes_are_real_passes_and_bare_iins():
    texts = [s.expected.decode() for s in corpus(3, sizes=((640, 480),), seed=2)]
    iins = [t for t in texts if is_valid_iin(t)]
    passes = [t for t in texts if t.count(".") == 2 and len(t) > 200]  # compact JWS
    # Both kinds, as phones show them, and nothing else.
    assert iins and passes and len(iins) + len(passes) == len(texts)


def test_an_unknown_class_is_named():
    with pytest.raises(ValueError, match="unknown corpus class 'fog'"):
        sample("fog", (640, 480), 0)
