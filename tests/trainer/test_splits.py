"""trainer.datasets.split_files.load_split on the official split-file format.

The four files in tests/fixtures/hmdb51_splits are official ones (trailing spaces,
odd clip names, `kick` next to `kick_ball`); the videos are empty files named after
the clips, since only their presence matters here.
"""

from __future__ import annotations

import logging
import shutil

import pytest

from trainer.datasets.hmdb51 import HMDB51, HMDB51_LAYOUT, load_split
from trainer.datasets.split_files import Layout, parse_split_file
from trainer.errors import DatasetError

FIXTURE_CLASSES = ["brush_hair", "cartwheel", "kick", "kick_ball"]


def make_dataset(root, split_files, *, skip=()):
    """root/splits holds split_files; root/videos holds an empty file per listed clip."""
    (root / "splits").mkdir(parents=True)
    for source in split_files:
        shutil.copy(source, root / "splits" / source.name)
        name = source.name.rsplit("_test_split", 1)[0]
        (root / "videos" / name).mkdir(parents=True, exist_ok=True)
        for clip, _ in parse_split_file(source):
            if f"{name}/{clip}" not in skip:
                (root / "videos" / name / clip).touch()
    return root


@pytest.fixture
def fixture_root(split_fixtures, tmp_path):
    return make_dataset(tmp_path / "data", sorted(split_fixtures.glob("*.txt")))


def write_split(root, name, text, split=1, newline="\n"):
    (root / "splits").mkdir(parents=True, exist_ok=True)
    path = root / "splits" / f"{name}_test_split{split}.txt"
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def test_official_files_give_70_train_and_30_test_clips_per_class(fixture_root):
    split = load_split(fixture_root, 1)

    for label in range(len(split.classes)):
        assert sum(1 for _, y in split.train if y == label) == 70
        assert sum(1 for _, y in split.test if y == label) == 30


def test_classes_follow_python_sorted_so_kick_comes_before_kick_ball(fixture_root):
    split = load_split(fixture_root, 1)

    assert split.classes == FIXTURE_CLASSES
    assert sorted(p.name for p in (fixture_root / "splits").iterdir())[2:4] == [
        "kick_ball_test_split1.txt",
        "kick_test_split1.txt",
    ]


def test_each_clip_carries_the_label_of_its_class_folder(fixture_root):
    split = load_split(fixture_root, 1)

    for path, label in split.train + split.test:
        assert path.split("/")[0] == split.classes[label]
        assert (fixture_root / "videos" / path).is_file()


def test_odd_clip_names_are_kept_literally(fixture_root):
    split = load_split(fixture_root, 1)

    paths = {p for p, _ in split.train + split.test}
    assert "cartwheel/Geena_und_die_Radschl_ge___;-)_cartwheel_f_cm_np1_ri_med_0.avi" in paths
    assert "kick_ball/Amazing_Soccer_#2_kick_ball_f_cm_np1_fr_bad_1.avi" in paths
    assert (
        "brush_hair/Brushing_Her_Hair__[_NEW_AUDIO_]_UPDATED!!!!_brush_hair_h_cm_np1_fr_goo_0.avi"
        in paths
    )


def test_unused_clips_are_in_neither_list(fixture_root):
    split = load_split(fixture_root, 1)

    paths = {p for p, _ in split.train + split.test}
    assert "kick/Best_fight_scene_in_history_of_movie_kick_f_cm_np2_ba_bad_2.avi" not in paths
    assert len(paths) == 4 * 100


def test_clips_missing_on_disk_are_reported_and_left_out(split_fixtures, tmp_path, caplog):
    gone = {
        "kick/50_FIRST_DATES_kick_f_cm_np1_ba_med_19.avi",  # train
        "kick/FOOT_2009_(REMI_GAILLARD)_kick_f_cm_np1_ba_med_5.avi",  # test
    }
    root = make_dataset(tmp_path / "data", sorted(split_fixtures.glob("*.txt")), skip=gone)

    with caplog.at_level(logging.WARNING, logger="trainer.datasets.base"):
        split = load_split(root, 1)

    assert set(split.missing) == gone
    assert (len(split.train), len(split.test)) == (4 * 70 - 1, 4 * 30 - 1)
    assert "2 clips of split 1 are listed but not in" in caplog.text


def test_crlf_line_ends_and_trailing_spaces_are_tolerated(tmp_path):
    root = tmp_path / "data"
    write_split(root, "a", "x.avi 1 \n\ny.avi 2\t \nz.avi 0\n", newline="\r\n")
    write_split(root, "b", "w.avi 1\nv.avi 2", newline="\r\n")
    for path in ("a/x.avi", "a/y.avi", "b/w.avi", "b/v.avi"):
        (root / "videos" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "videos" / path).touch()

    split = load_split(root, 1)

    assert split.train == [("a/x.avi", 0), ("b/w.avi", 1)]
    assert split.test == [("a/y.avi", 0), ("b/v.avi", 1)]


def test_clip_names_starting_with_dash_or_hash_are_clips_not_options_or_comments(tmp_path):
    path = write_split(tmp_path, "c", "-rf.avi 1 \n#2_fight.avi 2 \n--help 1 \n")

    assert parse_split_file(path) == [("-rf.avi", 1), ("#2_fight.avi", 2), ("--help", 1)]


def test_clip_name_with_spaces_keeps_them(tmp_path):
    path = write_split(tmp_path, "c", "my clip (1).avi 1 \n")

    assert parse_split_file(path) == [("my clip (1).avi", 1)]


@pytest.mark.parametrize("line", ["clip.avi 3", "clip.avi", "clip.avi one"])
def test_line_without_a_valid_tag_names_file_and_line(tmp_path, line):
    path = write_split(tmp_path, "c", f"ok.avi 1\n{line}\n")

    with pytest.raises(DatasetError, match=r"c_test_split1\.txt, line 2"):
        parse_split_file(path)


@pytest.mark.parametrize("clip", ["../../etc/passwd", "sub/clip.avi", ".."])
def test_clip_name_that_is_a_path_is_refused(tmp_path, clip):
    path = write_split(tmp_path, "c", f"{clip} 1\n")

    with pytest.raises(DatasetError, match="is not a file name"):
        parse_split_file(path)


def test_clip_listed_twice_is_refused(tmp_path):
    path = write_split(tmp_path, "c", "a.avi 1\na.avi 2\n")

    with pytest.raises(DatasetError, match="listed twice"):
        parse_split_file(path)


def test_other_splits_files_are_not_mixed_in(fixture_root):
    before = load_split(fixture_root, 1)
    for name in FIXTURE_CLASSES:
        write_split(fixture_root, name, "other.avi 1\nmore.avi 2\n", split=2)

    assert load_split(fixture_root, 1) == before


def test_class_without_a_file_for_the_split_is_named_not_skipped(fixture_root):
    # Skipping it would give the classes after it (kick_ball) another label.
    for name in FIXTURE_CLASSES:
        write_split(fixture_root, name, "other.avi 1\nmore.avi 2\n", split=2)
    (fixture_root / "splits" / "kick_test_split1.txt").unlink()

    with pytest.raises(DatasetError, match=r"no `<class>_test_split1\.txt` for 'kick'"):
        load_split(fixture_root, 1)


def test_official_files_pass_a_layout_of_their_classes_and_counts(fixture_root):
    layout = Layout("HMDB51", tuple(FIXTURE_CLASSES), train_per_class=70, test_per_class=30)

    assert load_split(fixture_root, 1, layout).classes == FIXTURE_CLASSES


def test_hmdb51_layout_names_the_classes_that_are_missing(fixture_root):
    with pytest.raises(DatasetError, match=r"not HMDB51's 51 classes: .*'catch', 'chew'.* 37 more"):
        load_split(fixture_root, 1, HMDB51_LAYOUT)


def test_class_file_with_other_clip_counts_than_the_layout_is_named(fixture_root):
    path = fixture_root / "splits" / "kick_test_split1.txt"
    lines = path.read_text().splitlines(keepends=True)
    first_train = next(i for i, line in enumerate(lines) if line.rstrip().endswith(" 1"))
    lines[first_train] = lines[first_train].rstrip()[:-1] + "0 \n"
    path.write_text("".join(lines))
    layout = Layout("HMDB51", tuple(FIXTURE_CLASSES), train_per_class=70, test_per_class=30)

    with pytest.raises(DatasetError, match=r"kick_test_split1\.txt tags 69 training and 30 test"):
        load_split(fixture_root, 1, layout)


def test_class_with_no_test_clips_listed_is_an_error(tmp_path):
    write_split(tmp_path, "a", "x.avi 1\ny.avi 2\n")
    write_split(tmp_path, "b", "w.avi 1\nv.avi 0\n")
    for path in ("a/x.avi", "a/y.avi", "b/w.avi", "b/v.avi"):
        (tmp_path / "videos" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "videos" / path).touch()

    with pytest.raises(DatasetError, match=r"b_test_split1\.txt tags 1 training \(1\) and 0 test"):
        load_split(tmp_path, 1)


def test_class_whose_test_clips_are_all_missing_on_disk_is_an_error(split_fixtures, tmp_path):
    kick_test = {
        f"kick/{clip}"
        for clip, tag in parse_split_file(split_fixtures / "kick_test_split1.txt")
        if tag == 2
    }
    root = make_dataset(tmp_path / "data", sorted(split_fixtures.glob("*.txt")), skip=kick_test)

    with pytest.raises(DatasetError, match="Class 'kick' has no test clip of split 1"):
        load_split(root, 1)


def test_missing_split_files_say_how_to_get_them(tmp_path):
    (tmp_path / "videos").mkdir()

    with pytest.raises(DatasetError, match="python -m trainer"):
        load_split(tmp_path, 2)


def test_missing_videos_folder_is_an_error(split_fixtures, tmp_path):
    (tmp_path / "splits").mkdir()
    shutil.copy(split_fixtures / "kick_test_split1.txt", tmp_path / "splits")

    with pytest.raises(DatasetError, match="have not been unpacked"):
        load_split(tmp_path, 1)


def test_split_with_no_video_on_disk_is_an_error(split_fixtures, tmp_path):
    (tmp_path / "splits").mkdir()
    shutil.copy(split_fixtures / "kick_test_split1.txt", tmp_path / "splits")
    (tmp_path / "videos" / "kick").mkdir(parents=True)

    with pytest.raises(DatasetError, match="0 training and 0 test clips"):
        load_split(tmp_path, 1)


def test_split_number_outside_1_to_3_is_refused(fixture_root):
    with pytest.raises(ValueError, match="split must be one of"):
        load_split(fixture_root, 4)


def test_the_hmdb51_dataset_reads_its_splits_with_hmdb51s_layout(fixture_root):
    # Four classes are not HMDB51: the dataset checks what the bare reader does not.
    assert load_split(fixture_root, 1).classes == FIXTURE_CLASSES
    with pytest.raises(DatasetError, match="not HMDB51's 51 classes"):
        HMDB51(fixture_root).split(1)
