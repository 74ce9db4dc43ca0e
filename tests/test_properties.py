"""Property-based tests (hypothesis) of frame sampling and of the dataset readers.

`make test` runs a few examples of each (profile `make-test`); `make robustness` many more (`HYPOTHESIS_PROFILE=robustness`).
"""
import os, re, tempfile, unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from video_classifier.data import DatasetError, write_video
from video_classifier.datasets import read_dataset
from video_classifier.frames import VideoError, load_video, sample_indices

settings.register_profile("make-test", max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("robustness", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "make-test"))
pytestmark = pytest.mark.filterwarnings("ignore:class .* has one group only")  # a drawn split of one-group classes says so
FEW = 8 if os.environ.get("HYPOTHESIS_PROFILE", "make-test") == "make-test" else 60  # examples of the tests that write videos

# ---------------------------------------------------------------------------------------------- sample_indices

@given(n=st.integers(0, 100_000), m=st.integers(0, 2_000), sampling=st.sampled_from(["first", "uniform"]))
def test_sample_indices_contract(n, m, sampling):
    idx = sample_indices(n, m, sampling)
    count = n if m == 0 else min(n, m)
    assert idx.dtype.kind == "i" and idx.shape == (count,)
    assert (np.diff(idx) > 0).all(), "indices must be strictly increasing (sorted, no frame twice)"
    if count: assert 0 <= idx[0] and idx[-1] < n
    if sampling == "first" or m == 0 or n <= m: assert (idx == np.arange(count)).all(), "a prefix of the clip"
    else:
        assert idx[0] == 0 and (m == 1 or idx[-1] == n - 1), "uniform sampling keeps both ends"
        gaps = np.diff(idx)
        if len(gaps): assert gaps.max() - gaps.min() <= 1, f"uneven spread: gaps from {gaps.min()} to {gaps.max()}"

@given(nm=st.integers(1, 500).flatmap(lambda m: st.tuples(st.integers(1, m), st.just(m))))  # n <= m, drawn so (no filtering)
def test_uniform_is_first_when_the_clip_is_short(nm):
    "A clip no longer than `max_frames` is kept whole, whatever the sampling."
    n, m = nm
    assert (sample_indices(n, m, "uniform") == sample_indices(n, m, "first")).all()

@given(m=st.one_of(st.integers(max_value=-1), st.floats(allow_nan=True), st.text(max_size=3), st.none()),
       sampling=st.one_of(st.sampled_from(["first", "uniform"]), st.text(max_size=8)))
def test_sample_indices_refuses_bad_options(m, sampling):
    "A bad `max_frames` or `sampling` is a ValueError naming the option, never another exception or a wrong answer."
    assume(not (isinstance(m, int) and m >= 0) or sampling not in ("first", "uniform"))
    with pytest.raises(ValueError, match="max_frames|sampling"): sample_indices(10, m, sampling)

@settings(max_examples=FEW)
@given(n=st.integers(1, 40), m=st.integers(0, 12), sampling=st.sampled_from(["first", "uniform"]), ext=st.sampled_from([".avi", ".mp4"]))
def test_load_video_returns_the_sampled_frames(n, m, sampling, ext):
    "`load_video` returns exactly the frames `sample_indices` names: frame i shows i in binary, a 16-pixel block a bit."
    bits = (np.arange(n)[:, None] >> np.arange(9)) & 1  # (n, 9): a 3x3 grid of black or white blocks
    frames = np.kron(bits.reshape(n, 3, 3) * 255, np.ones((16, 16), np.int64)).astype(np.uint8)[..., None].repeat(3, -1)
    with tempfile.TemporaryDirectory() as tmp:
        got = load_video(write_video(Path(tmp)/f"clip{ext}", frames), m, None, sampling)  # 48x48: nothing cropped or resized
    blocks = got[..., 0].reshape(len(got), 3, 16, 3, 16).mean((2, 4)).reshape(len(got), 9) > 127
    assert (blocks @ (1 << np.arange(9))).tolist() == sample_indices(n, m, sampling).tolist()

# ---------------------------------------------------------------------------------------------- the dataset readers

# Class and file names as people write them: any letters, digits, spaces, punctuation; no '/', no NUL, not hidden.
_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x00")
def _name(max_size=12): return st.text(_CHARS, min_size=1, max_size=max_size).map(lambda s: unicodedata.normalize("NFC", s)).filter(
    lambda s: s.strip() == s and s not in (".", "..") and not s.startswith(".") and len(s.encode()) < 100)
_CLASSES = st.lists(_name(), min_size=2, max_size=4, unique_by=lambda s: s)
_COUNTS = st.lists(st.integers(1, 5), min_size=4, max_size=4)

def _clip_names(k: int, groups: int) -> list[str]:
    "`k` clip file names, in `groups` source videos (the UCF101 `gNN` marks them)."
    return [f"v_x_g{j % groups + 1:02d}_c{j:02d}.avi" for j in range(k)]

def _read(root, **kw):
    "read_dataset, checking that what it raises is a DatasetError (or VideoError) with a message."
    try: return read_dataset(root, **kw)
    except (DatasetError, VideoError) as e:
        assert str(e).strip(), "an error without a message"
        return e

@given(classes=_CLASSES, counts=_COUNTS, given_split=st.booleans(), groups=st.integers(1, 4), seed=st.integers(0, 5),
       fraction=st.floats(0.1, 0.9))
def test_read_class_folders(classes, counts, given_split, groups, seed, fraction):
    "A folder per class, with or without train/ and test/: every clip once, its class its folder, splits as given or drawn by group."
    with tempfile.TemporaryDirectory() as tmp:
        root, written = Path(tmp)/"data", {}
        for c, k in zip(classes, counts):
            for j, name in enumerate(_clip_names(k, groups)):
                split = ("train" if j % 3 else "test") if given_split else None
                p = root/split/c/name if split else root/c/name
                p.parent.mkdir(parents=True, exist_ok=True); p.touch(); written[str(p)] = (c, split)
        df = _read(root, seed=seed, test_fraction=fraction, check=False)
        if isinstance(df, Exception):  # only a given split with a class missing from test/ or train/ may be refused here
            assert given_split and re.search(r"class folder|no test|train/", str(df)), df
            return
        assert sorted(df.path) == sorted(written), "every clip exactly once"
        assert [written[p][0] for p in df.path] == list(df.tag), "a clip's label is its class folder's name"
        if given_split: assert [written[p][1] for p in df.path] == list(df.split), "splits as the folders give them"
        else:
            assert set(df.split) <= {"train", "test"}
            assert not set(df.group[df.split == "train"]) & set(df.group[df.split == "test"]), "a source video on both sides of a drawn split"

_LABELS = st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), min_size=1, max_size=10), min_size=2, max_size=4,
                   unique_by=lambda s: s.strip()).filter(lambda ls: all(s.strip() for s in ls))

@given(labels=_LABELS, counts=_COUNTS, with_split=st.booleans(), with_group=st.booleans(), groups=st.integers(1, 4), seed=st.integers(0, 5))
def test_read_csv_dataset(labels, counts, with_split, with_group, groups, seed):
    "A CSV of path and label (split, group): every row once, labels as written (without surrounding spaces), splits as given or by group."
    with tempfile.TemporaryDirectory() as tmp:
        root, rows = Path(tmp), []
        for c, (label, k) in enumerate(zip(labels, counts)):
            for j, name in enumerate(_clip_names(k, groups)):
                path = f"videos/{c}/{name}"
                (root/path).parent.mkdir(parents=True, exist_ok=True); (root/path).touch()
                rows.append(dict(path=path, label=label, split="train" if j % 3 else "test", group=f"s{j % groups}"))
        table = pd.DataFrame(rows)
        table[["path", "label"] + ["split"] * with_split + ["group"] * with_group].to_csv(root/"clips.csv", index=False)
        df = _read(root/"clips.csv", seed=seed, check=False)
        assert not isinstance(df, Exception), df
        assert sorted(df.path) == sorted(str(root/r["path"]) for r in rows), "every row exactly once"
        by_path = {str(root/r["path"]): r for r in rows}
        assert [by_path[p]["label"].strip() for p in df.path] == list(df.tag)
        if with_split: assert [by_path[p]["split"] for p in df.path] == list(df.split)
        else: assert not set(df.group[df.split == "train"]) & set(df.group[df.split == "test"]), "a group on both sides of a drawn split"

@given(layout=st.sampled_from(["folders", "csv", "tutorial"]), junk=st.binary(max_size=200), names=st.lists(_name(30), min_size=1, max_size=4))
def test_readers_refuse_junk_with_a_dataset_error(layout, junk, names):
    "Junk where a dataset should be (random bytes as the CSV or split lists, random files): a DatasetError, never another exception."
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)/"data"
        if layout == "csv": root.mkdir(); (root/"clips.csv").write_bytes(junk); target = root/"clips.csv"
        else:
            for n in names: (root/"train"/n).mkdir(parents=True, exist_ok=True); (root/"test"/n).mkdir(parents=True, exist_ok=True)
            if layout == "tutorial": (root/"train.csv").write_bytes(junk); (root/"test.csv").write_bytes(junk)
            for n in names[:1]: (root/"train"/n/"x.avi").write_bytes(junk)
            target = root
        try: df = read_dataset(target, layout=layout)
        except (DatasetError, VideoError) as e: assert str(e).strip()
        else: assert len(df) > 0
