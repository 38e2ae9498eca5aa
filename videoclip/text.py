"""Words and concepts of a text: the crude stemmer the simulated world and the book share.

A *visual concept* of the simulated world is the crude stem of a content word
(:func:`concepts_of`): "slice the bread" names ``slic`` and ``bread``.
"""

from __future__ import annotations

import re

__all__ = ["STOP_WORDS", "concepts_of", "stem", "text_concepts", "words_of"]

# A standard English stop-word list (articles, pronouns, auxiliaries, prepositions, fillers).
STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each else ever every
    few for from further get gets getting go going gonna got had has have having he her here hers
    herself him himself his how i if in into is it its itself just let lets like me more most my
    myself next no nor not now of off okay on once only or other our ours ourselves out over own
    really right same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we well were what when where which
    while who whom why will with would yeah you your yours yourself yourselves um uh oh one two
    three four five six seven eight nine ten another around again still want wanna way thing things
    make sure little bit back""".split()  # noqa: SIM905 (a word list, wrapped)
)
_WORD = re.compile(r"[a-z]+")


def stem(word: str) -> str:
    """Crude stem shared by all surface forms of a concept word ("slices"/"sliced" → "slic")."""
    w = word.lower()
    for suffix in ("ing", "ed", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            w = w[: -len(suffix)]
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]  # "stirr" → "stir", "chopp" → "chop"
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def words_of(text: str) -> list[str]:
    """Lower-case alphabetic words of a text (punctuation, digits and apostrophes split off)."""
    return _WORD.findall(text.lower())


def concepts_of(text: str, *, all_words: bool = False) -> tuple[str, ...]:
    """Visual concepts named by a text: stems of its content words (of all its words of 2+
    letters with ``all_words``), in order, without repeats."""
    out: list[str] = []
    for word in words_of(text):
        if not all_words and (word in STOP_WORDS or len(word) < 3) or len(word) < 2:
            continue
        key = stem(word)
        if key not in out:
            out.append(key)
    return tuple(out)


def text_concepts(text: str) -> tuple[str, ...]:
    """What a text shows on screen: its content words' concepts, or, for a text of stop words
    only ("get things out"), those of all its words."""
    return concepts_of(text) or concepts_of(text, all_words=True)
