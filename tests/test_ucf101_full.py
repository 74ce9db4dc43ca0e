"""The full UCF101 release's layout end to end: 101 classes, the three official splits, real-format clips.

The clips are generated (XviD `.avi`, 320x240, `UCF-101/<Class>/v_<Class>_gNN_cNN.avi`) and so are the lists, in the
release's own format: `classInd.txt` with the 101 class names, `trainlistNN.txt` with a class index a line,
`testlistNN.txt` without, CRLF line endings, and the release's one spelling quirk (the `HandstandPushups` class holds
files named `v_HandStandPushups_...`). Split k tests groups 7(k-1)+1 to 7k, as the release does; a few of those
groups stand for all 25. Each class has a colour of its own, so a classifier that learns anything scores well above
chance (1%) only if clips, labels and splits line up.
"""
from __future__ import annotations
import re, subprocess, sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from video_classifier.data import write_video

UCF101_CLASSES = """ApplyEyeMakeup ApplyLipstick Archery BabyCrawling BalanceBeam BandMarching BaseballPitch Basketball BasketballDunk
BenchPress Biking Billiards BlowDryHair BlowingCandles BodyWeightSquats Bowling BoxingPunchingBag BoxingSpeedBag BreastStroke
BrushingTeeth CleanAndJerk CliffDiving CricketBowling CricketShot CuttingInKitchen Diving Drumming Fencing FieldHockeyPenalty
FloorGymnastics FrisbeeCatch FrontCrawl GolfSwing Haircut Hammering HammerThrow HandstandPushups HandstandWalking HeadMassage
HighJump HorseRace HorseRiding HulaHoop IceDancing JavelinThrow JugglingBalls JumpingJack JumpRope Kayaking Knitting LongJump
Lunges MilitaryParade Mixing MoppingFloor Nunchucks ParallelBars PizzaTossing PlayingCello PlayingDaf PlayingDhol PlayingFlute
PlayingGuitar PlayingPiano PlayingSitar PlayingTabla PlayingViolin PoleVault PommelHorse PullUps Punch PushUps Rafting
RockClimbingIndoor RopeClimbing Rowing SalsaSpin ShavingBeard Shotput SkateBoarding Skiing Skijet SkyDiving SoccerJuggling
SoccerPenalty StillRings SumoWrestling Surfing Swing TableTennisShot TaiChi TennisSwing ThrowDiscus TrampolineJumping Typing
UnevenBars VolleyballSpiking WalkingWithDog WallPushups WritingOnBoard YoYo""".split()
GROUPS = (1, 3, 8, 10, 15, 17, 22, 25)  # two of each split's seven test groups, and two groups that are never tested
CLIP = "{c}/v_{f}_g{g:02d}_c01.avi"


def _file_name(cls: str) -> str:
    "The class's name as the release spells it in file names."
    return "HandStandPushups" if cls == "HandstandPushups" else cls


def _frames(i: int, g: int, n: int = 12) -> np.ndarray:
    "A clip of class `i`: one of 17 hues, a white bar crossing it at one of 6 heights; brightness varies by group."
    hsv = np.zeros((n, 240, 320, 3), np.uint8)
    hsv[..., 0], hsv[..., 1], hsv[..., 2] = (i % 17) * 10, 220, 150 + 4 * (g % 10)
    rgb = np.stack([cv2.cvtColor(f, cv2.COLOR_HSV2RGB) for f in hsv])
    y = 40 * (i // 17)
    for t in range(n): x = 20 + t * 20; rgb[t, y:y + 40, x:x + 40] = 255
    return rgb


def _lines(path: Path, lines) -> None:
    path.write_bytes("".join(f"{line}\r\n" for line in lines).encode())


def write_ucf101_release(root: Path) -> Path:
    "A UCF101 release in the official layout at `root`: 101 classes x 8 groups x 1 clip."
    lists = root/"ucfTrainTestlist"; lists.mkdir()
    _lines(lists/"classInd.txt", [f"{i} {c}" for i, c in enumerate(UCF101_CLASSES, 1)])
    for i, c in enumerate(UCF101_CLASSES):
        for g in GROUPS: write_video(root/"UCF-101"/CLIP.format(c=c, f=_file_name(c), g=g), _frames(i, g))
    for k in (1, 2, 3):
        tested = lambda g: 7 * (k - 1) < g <= 7 * k
        clips = [(i, CLIP.format(c=c, f=_file_name(c), g=g), g) for i, c in enumerate(UCF101_CLASSES, 1) for g in GROUPS]
        _lines(lists/f"trainlist{k:02d}.txt", [f"{clip} {i}" for i, clip, g in clips if not tested(g)])
        _lines(lists/f"testlist{k:02d}.txt", [clip for i, clip, g in clips if tested(g)])
    return root


@pytest.fixture(scope="module")
def ucf101(tmp_path_factory) -> Path:
    return write_ucf101_release(tmp_path_factory.mktemp("ucf101"))


def test_the_lists_hold_101_classes():
    assert len(UCF101_CLASSES) == len(set(UCF101_CLASSES)) == 101


@pytest.mark.parametrize("split", [1, 2, 3])
def test_each_official_split_is_read_as_listed(ucf101, split):
    from video_classifier.datasets import dataset_splits, read_dataset
    df = read_dataset(ucf101, split=split)
    train, test = dataset_splits(df)
    assert df.attrs["layout"] == "ucf101" and len(df) == 101 * len(GROUPS)
    assert sorted(test.tag.unique()) == sorted(UCF101_CLASSES) == sorted(train.tag.unique())
    tested = {g for g in GROUPS if 7 * (split - 1) < g <= 7 * split}
    assert set(test.group.str.extract(r"g(\d+)", expand=False).astype(int)) == tested
    assert not set(train.group) & set(test.group)  # no source video on both sides
    listed = (ucf101/"ucfTrainTestlist"/f"testlist{split:02d}.txt").read_text().split()
    assert sorted(test.video_name) == sorted(f"UCF-101/{clip}" for clip in listed) and all(Path(p).is_file() for p in df.path)
    assert (train.tag == "HandstandPushups").sum() == len(GROUPS) - len(tested)  # the class whose files spell it HandStand


def test_train_and_evaluate_on_every_split(ucf101, tmp_path):
    "`train_classifier` on each official split, features extracted once for all three, then the saved bundle evaluated."
    from video_classifier.pipeline import train_classifier
    from video_classifier.predict import VideoClassifier
    settings = dict(backbone="mobilenet", weights=None, img_size=64, alpha=0.25, max_seq_length=6, epochs=60, batch_size=64, learning_rate=0.01,
                    cache_dir=tmp_path/"cache", progress=False)
    for split in (1, 2, 3):
        res = train_classifier(ucf101, tmp_path/f"split{split}", official_split=split, **settings)
        assert res.classifier.class_vocab == sorted(UCF101_CLASSES)
        test = res.dataset[res.dataset.split == "test"]
        assert len(test) == 101 * 2 and res.evaluation.accuracy > 0.3, (split, res.evaluation.accuracy)  # chance: 1%
        again = VideoClassifier.load(tmp_path/f"split{split}").evaluate(ucf101)  # the bundle knows its split
        assert again.accuracy == pytest.approx(res.evaluation.accuracy)


def test_the_command_trains_on_an_official_split(ucf101, tmp_path):
    cmd = [str(Path(sys.executable).parent/"video-classifier"), "train", str(ucf101), str(tmp_path/"clf"), "--official-split", "2",
           "--backbone", "mobilenet", "--weights", "none", "--img-size", "64", "--seq-len", "6", "--epochs", "60", "--cache-dir", str(tmp_path/"cache")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert re.search(r"101 classes", res.stdout + res.stderr), res.stdout[-2000:]
    assert float(re.search(r"Test accuracy: ([\d.]+)%", res.stdout).group(1)) > 10  # chance: 1%
