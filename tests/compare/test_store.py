"""The A/B verdict log: verdicts with their clips, the tally per pair of variants (whichever side
each variant was on), the CSV files, the bounds, and a damaged log."""

from __future__ import annotations

import csv
import threading

import numpy as np
import pytest
import soundfile as sf

from studio.compare.store import CSV_COLUMNS, TALLY_COLUMNS, CompareStoreError, Verdict, VerdictStore
from studio.compare.variants import Variant, make_variant, pair_key, parse_variant

MODELS = ("f5-tts",)
NFE16 = Variant("f5-tts", 16, 1.0, 0.15)
NFE32 = Variant("f5-tts", 32, 1.0, 0.15)
FAST = Variant("f5-tts", 32, 1.2, 0.15)


@pytest.fixture
def clips(tmp_path):
    """Two small WAV files (0.2 s each)."""
    paths = []
    for index in range(2):
        path = tmp_path / f"clip{index}.wav"
        sf.write(str(path), np.full(4800, 0.1 * (index + 1), dtype=np.float32), 24000, subtype="PCM_16")
        paths.append(path)
    return paths


def verdict(clips, a, b, pick, swapped=False, number=[0], text="Hello there.") -> Verdict:
    number[0] += 1
    return Verdict(f"cmp{number[0]}", text, "Alice", 7, a, b, clips[0], clips[1], True, swapped, pick)


def test_the_tally_counts_a_pair_whichever_variant_was_a_and_whichever_side_it_was_on(tmp_path, clips):
    store = VerdictStore(tmp_path / "data")
    store.save(verdict(clips, NFE32, NFE16, "A"))  # 32 wins, shown as A
    store.save(verdict(clips, NFE16, NFE32, "B"))  # 32 wins, entered as B
    store.save(verdict(clips, NFE32, NFE16, "A", swapped=True))  # 32 wins, played on side B
    store.save(verdict(clips, NFE16, NFE32, "A", swapped=True))  # 16 wins
    store.save(verdict(clips, NFE16, NFE32, "same"))
    store.save(verdict(clips, NFE32, FAST, "B"))  # another pair
    rows = store.tally()
    assert [row.total for row in rows] == [5, 1]
    top = rows[0]
    wins = {top.first: top.first_wins, top.second: top.second_wins}
    assert wins == {NFE32: 3, NFE16: 1} and top.same == 1
    assert rows[1].to_dict()["verdicts"] == 1
    assert {rows[1].first, rows[1].second} == {NFE32, FAST}
    winner = rows[1].first_wins if rows[1].first == FAST else rows[1].second_wins
    assert winner == 1
    assert store.count() == 6
    assert len(list((tmp_path / "data" / "compare" / "clips").glob("*.wav"))) == 12


def test_variant_keys_are_canonical_and_the_pair_key_ignores_order():
    assert make_variant("A", "", 32.0, 1, 0.15, MODELS) == NFE32
    assert parse_variant("B", '{"nfe_step": 16}', MODELS, {"model": "f5-tts", "nfe_step": 32, "speed": 1.0,
                                                             "cross_fade": 0.15}) == NFE16
    assert pair_key(NFE16, NFE32) == pair_key(NFE32, NFE16)
    assert Variant.from_key(NFE16.key()) == NFE16
    with pytest.raises(Exception, match=r"Variant A: unknown model 'pt'; this server offers: f5-tts"):
        make_variant("A", "pt", 32, 1, 0.15, MODELS)
    with pytest.raises(Exception, match=r"Variant B: NFE steps must be between 4 and 64"):
        make_variant("B", "", 100, 1, 0.15, MODELS)
    with pytest.raises(Exception, match=r"unknown field\(s\) steps"):
        parse_variant("A", {"steps": 3}, MODELS, {})
    with pytest.raises(Exception, match=r"not valid JSON"):
        parse_variant("A", "{nope", MODELS, {})


def test_csv_files_have_the_columns_and_one_row_per_verdict(tmp_path, clips):
    store = VerdictStore(tmp_path / "data")
    store.save(verdict(clips, NFE32, NFE16, "A", text='A "quoted", comma text.'))
    store.save(verdict(clips, NFE16, NFE32, "B", swapped=True))
    with open(store.write_csv(tmp_path / "verdicts.csv"), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == CSV_COLUMNS
    assert len(rows) == 2
    assert rows[0]["text"] == 'A "quoted", comma text.' and rows[0]["voice"] == "Alice" and rows[0]["seed"] == "7"
    assert Variant.from_key(rows[0]["variant_a"]) == NFE32 and rows[0]["pick"] == "A"
    assert rows[1]["swapped"] == "yes" and rows[1]["pick"] == "B" and rows[1]["picked_side"] == "A"
    assert rows[0]["time_utc"].endswith("+00:00") and rows[0]["clip_a"].endswith(".wav")
    with open(store.write_tally_csv(tmp_path / "tally.csv"), encoding="utf-8", newline="") as handle:
        tally = list(csv.reader(handle))
    assert tally[0] == TALLY_COLUMNS
    assert len(tally) == 2 and tally[1][5] == "2"
    assert sorted(tally[1][:2]) == sorted([NFE16.label(), NFE32.label()])
    assert sorted(tally[1][2:4]) == ["0", "2"]


def test_the_log_is_bounded_in_verdicts_and_in_clip_bytes(tmp_path, clips):
    clip_size = sum(path.stat().st_size for path in clips)
    store = VerdictStore(tmp_path / "data", max_verdicts=3, max_clip_bytes=2 * clip_size)
    for _ in range(3):
        store.save(verdict(clips, NFE32, NFE16, "A"))
    # The clips of the oldest verdict went; its row (and the tally) stayed.
    assert store.count() == 3 and store.clip_bytes() == 2 * clip_size
    assert len(list(store.clips.glob("*.wav"))) == 4
    assert store.tally()[0].total == 3
    with pytest.raises(CompareStoreError, match=r"full \(3 verdicts, F5_COMPARE_MAX_VERDICTS\)"):
        store.save(verdict(clips, NFE32, NFE16, "B"))
    assert len(list(store.clips.glob("*.wav"))) == 4, "a refused verdict leaves no clip behind"
    with pytest.raises(CompareStoreError, match=r"A pick is one of A, B, same"):
        store.save(verdict(clips, NFE32, NFE16, "C"))


def test_a_comparison_gets_one_verdict_and_concurrent_saves_all_land(tmp_path, clips):
    store = VerdictStore(tmp_path / "data")
    first = verdict(clips, NFE32, NFE16, "A")
    store.save(first)
    with pytest.raises(CompareStoreError, match="already has a verdict"):
        store.save(first)
    threads = [threading.Thread(target=store.save, args=(verdict(clips, NFE32, NFE16, "same"),)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count() == 7


def test_a_damaged_log_gives_a_clear_error(tmp_path, clips):
    folder = tmp_path / "data" / "compare"
    folder.mkdir(parents=True)
    (folder / "verdicts.sqlite3").write_bytes(b"this is not a database, just some text\n" * 200)
    store = VerdictStore(tmp_path / "data")  # starts: the tab still compares
    with pytest.raises(CompareStoreError, match=r"The A/B verdict log cannot be used right now \(file is not a database\)"):
        store.tally()
    with pytest.raises(CompareStoreError, match=r"cannot be used right now"):
        store.save(verdict(clips, NFE32, NFE16, "A"))
    assert list(store.clips.glob("*.wav")) == [], "no clip is kept for a verdict that was not saved"


def test_a_clip_that_expired_is_a_clear_error(tmp_path, clips):
    store = VerdictStore(tmp_path / "data")
    gone = Verdict("x", "t", "v", 1, NFE32, NFE16, tmp_path / "missing.wav", clips[1], False, False, "A")
    with pytest.raises(CompareStoreError, match=r"could not be kept \(they may have expired\)"):
        store.save(gone)
    assert store.count() == 0


def test_the_bounds_come_from_the_settings(tmp_path):
    from studio.compare.store import make_store
    from studio.settings import SettingsError, studio_settings

    settings = studio_settings({"F5_DATA_DIR": str(tmp_path / "d"), "F5_COMPARE_MAX_VERDICTS": "12",
                                "F5_COMPARE_MAX_CLIP_MB": "3"})
    store = make_store(settings)
    assert (store.max_verdicts, store.max_clip_bytes) == (12, 3 * 1024 * 1024)
    assert store.index == tmp_path / "d" / "compare" / "verdicts.sqlite3"
    defaults = studio_settings({"F5_DATA_DIR": str(tmp_path / "d")})
    assert (defaults.compare_max_verdicts, defaults.compare_max_clip_mb) == (5000, 500)
    with pytest.raises(SettingsError, match=r"F5_COMPARE_MAX_VERDICTS='0' must be at least 1"):
        studio_settings({"F5_COMPARE_MAX_VERDICTS": "0"})
