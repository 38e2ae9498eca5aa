"""World v2's narration source (videoclip.sim.narration)."""

from __future__ import annotations

import numpy as np

from videoclip.sim.config import make_config
from videoclip.sim.narration import CONNECTORS, ConceptSpeaker, Lexicon, TextGuard
from videoclip.sim.taxonomy import make_step
from videoclip.sim.video import StepSpan, Utterance
from videoclip.text import stem, words_of


def _span(caption: str) -> StepSpan:
    step = make_step(caption)
    return StepSpan(step, 0, 0.0, 10.0, step.concepts, caption)


def test_lexicon_gives_the_sources_word_forms_by_frequency():
    lexicon = Lexicon(["slicing bread slicing", "sliced the loaf", "the the"])
    assert "slic" in lexicon and "the" not in lexicon and "pour" not in lexicon
    rng = np.random.default_rng(0)
    draws = [lexicon.word(rng, "slic") for _ in range(3000)]
    assert set(draws) == {"slicing", "sliced"}
    assert abs(draws.count("slicing") / 3000 - 2 / 3) < 0.03


def test_a_step_is_spoken_by_its_concepts_never_its_text():
    cfg = make_config("smoke", pronoun_prob=0.0)
    speaker = ConceptSpeaker(Lexicon(["slicing bread loaves", "cutting board"]), cfg)
    span = _span("slice the bread on the cutting board")  # concepts slic, bread, cutt, board
    rng = np.random.default_rng(1)
    for _ in range(200):
        body = speaker.bare(rng, span)
        content = [w for w in body if w not in {c for x in CONNECTORS for c in x.split()}]
        assert sorted(stem(w) for w in content) == sorted(span.concepts)
        assert "slice the bread" not in " ".join(body)
    assert speaker.fallback_words == 0
    lone = ConceptSpeaker(Lexicon([]), cfg)
    words = lone.bare(rng, _span("pour water"))
    assert {words[0], words[-1]} == {"pour", "water"} and lone.fallback_words == 2  # the taxonomy's own words
    assert " ".join(words[1:-1]) in CONNECTORS


def test_the_guard_finds_texts_of_two_words_or_more():
    guard = TextGuard(["pour water", "Remove the tire!", "peel"])
    assert guard.num_texts == 2
    stream = words_of("now pour water and remove the tire then peel it pour")
    assert guard.spans(stream) == [(1, 3), (4, 7)]


def test_dropping_guarded_utterances_repeats_until_none_is_left():
    guard = TextGuard(["pour water", "stir mixture"])
    utterances = [Utterance(0, 1, ("so", "pour"), 0), Utterance(1, 2, ("water", "now"), -1),
                  Utterance(2, 3, ("stir",), 1), Utterance(3, 4, ("okay", "mixture"), -1),
                  Utterance(4, 5, ("mixture", "ok"), 2)]
    kept = guard.keep(utterances)
    # the first pass drops 0 and 1 ("pour water"); 3 stays ("stir okay mixture")
    assert [u.onset for u in kept] == [2, 3, 4]
    assert (guard.dropped_steps, guard.dropped_filler) == (1, 1)
    kept = guard.keep([Utterance(0, 1, ("stir",), 0), Utterance(1, 2, ("mixture",), 1)])
    assert kept == [] and guard.dropped_steps == 3
