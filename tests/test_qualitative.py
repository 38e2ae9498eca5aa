"""Tests of the qualitative retrieval helpers on a hand-made predictions table."""

from __future__ import annotations

import pandas as pd
import pytest

from videoclip.book.qualitative import annotate, error_breakdown, pick_examples


@pytest.fixture
def predictions() -> pd.DataFrame:
    # item -> (video, text, rank of own clip, top-1 item)
    rows = {
        "a0": ("A", "crack the eggs", 1, "a0"),
        "a1": ("A", "whisk the eggs", 3, "a0"),  # another segment of the same video
        "b0": ("B", "fry the chicken in oil", 1, "b0"),
        "b1": ("B", "add salt", 2, "c0"),  # same text in another video
        "c0": ("C", "add salt", 4, "b1"),  # same text in another video
        "c1": ("C", "slice the bread", 7, "b0"),  # unrelated
        "d0": ("D", "fry onions in oil", 2, "b0"),  # shares "fry", "oil" with b0
    }
    return pd.DataFrame([{"item_id": k, "video_id": v, "text": t, "rank": r, "top1_item_id": top,
                          "top1_text": None} for k, (v, t, r, top) in rows.items()]).assign(
        top1_text=lambda t: t.top1_item_id.map(dict(zip(t.item_id, t.text))))


def test_annotate_classifies_each_query(predictions):
    table = annotate(predictions).set_index("item_id")
    assert table.correct.tolist() == [True, False, True, False, False, False, False]
    assert table.same_video.tolist() == [False, True, False, False, False, False, False]
    assert table.loc["b1", "same_text"] and table.loc["c0", "same_text"] and not table.loc["a0", "same_text"]
    assert {"fry", "oil"} <= set(table.loc["d0", "shared_concepts"])


def test_error_breakdown_counts_each_failure_once(predictions):
    counts = error_breakdown(predictions)
    assert counts["queries"] == 7 and counts["failures"] == 5
    assert (counts["same_text"], counts["same_video"], counts["shared_concept"], counts["unrelated"]) == (2, 1, 1, 1)
    assert counts["same_text_pct"] == pytest.approx(40.0)


def test_pick_examples_is_seeded_and_says_when_fewer_exist(predictions):
    examples, counts = pick_examples(predictions, num_success=5, num_failure=2, seed=3)
    again, _ = pick_examples(predictions, num_success=5, num_failure=2, seed=3)
    pd.testing.assert_frame_equal(examples, again)
    assert counts == {"successes": 2, "successes_shown": 2, "failures": 5, "failures_shown": 2}
    assert examples.correct.tolist() == [True, True, False, False]
    assert examples["rank"].iloc[2] <= examples["rank"].iloc[3]
    with pytest.raises(KeyError, match="evaluate_retrieval"):
        annotate(predictions.drop(columns="top1_text"))
