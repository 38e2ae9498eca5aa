"""World v2's narration source: steps spoken from their concepts, never from benchmark text.

World v1 spoke a step by paraphrasing its text, so the corpus said the benchmarks' own step names
and captions. World v2 (design §13.1) speaks a step's *concepts* instead:

* :class:`Lexicon` — for each concept (a word stem, :func:`videoclip.text.stem`), the
  word forms an independent text source uses for it, with their frequencies: the real HowTo100M
  ASR lines of the world's filler talk.
* :class:`ConceptSpeaker` — the words of a step: a lead-in, its concepts as lexicon words in a
  random order joined by spoken connectors, sometimes "it" for a dropped later concept, a tail.
* :class:`TextGuard` — finds benchmark texts (two words or more) in a word stream and drops a
  video's utterances that spell one by chance (ASR noise, connectors, real filler lines).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from videoclip.sim.video import Utterance, dress
from videoclip.text import STOP_WORDS, stem, words_of

if TYPE_CHECKING:
    from videoclip.sim.config import SimConfig
    from videoclip.sim.video import StepSpan

__all__ = ["CONNECTORS", "ConceptSpeaker", "Lexicon", "TextGuard"]

#: Spoken words between two concept words (written here; no benchmark text).
CONNECTORS = ("the", "some", "this", "our", "and", "with", "that", "all the", "your", "a bit of")


class Lexicon:
    """Word forms per concept from an independent text source, weighted by frequency.

    Only content words count (not stop words, 3+ letters), as for concepts
    (:func:`videoclip.text.concepts_of`).
    """

    def __init__(self, lines: Iterable[str]) -> None:
        counts = Counter(w for line in lines for w in words_of(line)
                         if w not in STOP_WORDS and len(w) >= 3)
        forms: dict[str, list[tuple[str, int]]] = {}
        for word, count in sorted(counts.items()):
            forms.setdefault(stem(word), []).append((word, count))
        self._forms = {key: ([w for w, _ in items], np.array([c for _, c in items], float))
                       for key, items in forms.items()}

    def __contains__(self, concept: str) -> bool:
        return concept in self._forms

    def word(self, rng: np.random.Generator, concept: str) -> str:
        """A word form of ``concept`` drawn by frequency (KeyError when the source lacks it)."""
        words, counts = self._forms[concept]
        return words[int(rng.choice(len(words), p=counts / counts.sum()))] if len(words) > 1 else words[0]


class ConceptSpeaker:
    """Speaks a step from its concepts (world v2).

    Args:
        lexicon: the independent word forms.
        cfg: the world's knobs (``pronoun_prob``).
    """

    def __init__(self, lexicon: Lexicon, cfg: SimConfig) -> None:
        self.lexicon, self.cfg = lexicon, cfg
        self.fallback_words = 0  # concepts spoken by the taxonomy's own word (not in the lexicon)

    def _concept_word(self, rng: np.random.Generator, concept: str, span: StepSpan) -> str:
        if concept in self.lexicon:
            return self.lexicon.word(rng, concept)
        self.fallback_words += 1
        own = [w for w in words_of(span.caption) if stem(w) == concept]
        return own[0] if own else concept

    def bare(self, rng: np.random.Generator, span: StepSpan) -> list[str]:
        """The concept words in a random order, one connector in each gap; a later concept is
        dropped for one "it" with ``cfg.pronoun_prob``."""
        kept, dropped = [], False
        for k, concept in enumerate(span.concepts):
            if k and rng.random() < self.cfg.pronoun_prob:
                dropped = True
                continue
            kept.append(self._concept_word(rng, concept, span))
        if dropped:
            kept.append("it")
        order = rng.permutation(len(kept))
        words: list[str] = []
        for i, k in enumerate(order):
            if i:
                words += CONNECTORS[int(rng.integers(len(CONNECTORS)))].split()
            words.append(kept[k])
        return words

    def full(self, rng: np.random.Generator, span: StepSpan) -> list[str]:
        """:meth:`bare`, :func:`videoclip.sim.video.dress`ed with a lead-in and maybe a tail."""
        return dress(rng, self.bare(rng, span))


class TextGuard:
    """Finds given texts of two words or more, as contiguous word sequences, in a word stream."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._by_start: dict[tuple[str, str], set[tuple[str, ...]]] = {}
        for text in texts:
            words = tuple(words_of(text))
            if len(words) >= 2:
                self._by_start.setdefault(words[:2], set()).add(words)
        self.num_texts = sum(len(v) for v in self._by_start.values())
        self.dropped_steps = 0  # step utterances dropped by :meth:`keep`
        self.dropped_filler = 0

    def spans(self, words: list[str] | tuple[str, ...]) -> list[tuple[int, int]]:
        """``(start, end)`` word positions of every occurrence of a guarded text in ``words``."""
        out = []
        for i in range(len(words) - 1):
            for text in self._by_start.get((words[i], words[i + 1]), ()):
                if tuple(words[i:i + len(text)]) == text:
                    out.append((i, i + len(text)))
        return out


    def keep(self, utterances: list[Utterance]) -> list[Utterance]:
        """``utterances`` (in speaking order) without every utterance holding a word of a guarded
        text that the joined speech spells, repeated until none is left (dropping an utterance
        joins its neighbours); the drops are counted."""
        kept = list(utterances)
        while True:
            stream: list[str] = []
            owner: list[int] = []
            for j, utterance in enumerate(kept):
                words = words_of(" ".join(utterance.words))
                stream += words
                owner += [j] * len(words)
            bad = {owner[k] for start, end in self.spans(stream) for k in range(start, end)}
            if not bad:
                return kept
            self.dropped_steps += sum(kept[j].step >= 0 for j in bad)
            self.dropped_filler += sum(kept[j].step < 0 for j in bad)
            kept = [u for j, u in enumerate(kept) if j not in bad]
