"""Which persona a question is for: BM25 over each persona's fields, the fields weighted by how much they say.

A handful of short documents needs no index package; a few dozen lines of BM25 with field weights rank them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from tandem.toolsets.specialists.personas import Persona

K1 = 1.2
B = 0.75
WEIGHTS = {"keywords": 3.0, "name": 3.0, "title": 2.5, "description": 2.0, "when_to_use": 1.5, "instructions": 0.25}
"""Keywords are chosen to be discriminating; the instructions mention everything a little, so they count least."""

_WORD = re.compile(r"[a-z0-9][a-z0-9+#]*")
STOPWORDS = frozenset(
    """a about after all also an and any are as at be been before being both but by can could do does doing for from
    has have how i if in into is it its just me more most my need no not now of on once only or other our out over
    own same should so some such than that the their them then there these they this those through to too under
    until up use used using very via want was we were what when where which while who why will with would you your
    please help make get new etc e g eg answer question ask specialist expert""".split()
)


def stem(word: str) -> str:
    """A crude stem so that plural and verb forms meet (``retries``/``retry``, ``alerting``/``alerts``)."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix, least in (("ing", 6), ("ed", 5)):
        if word.endswith(suffix) and len(word) >= least:
            word = word[: -len(suffix)]
            break
    if word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower().replace("-", " ")) if w not in STOPWORDS]


def terms(text: str) -> list[str]:
    return [stem(w) for w in _words(text)]


@dataclass(frozen=True, slots=True)
class Match:
    persona: Persona
    score: float
    matched: tuple[str, ...]
    """The question's words that counted most, best first (as the question spells them)."""


def _fields(persona: Persona) -> dict[str, str]:
    return {
        "keywords": " ".join(persona.keywords),
        "name": persona.name.replace("_", " "),
        "title": persona.title,
        "description": persona.description,
        "when_to_use": persona.when_to_use or "",
        "instructions": persona.instructions,
    }


def rank(question: str, personas: Iterable[Persona]) -> list[Match]:
    """Every persona scored against ``question``, best first (ties by name); a score of 0 shares no term."""
    documents: list[tuple[Persona, Counter[str]]] = []
    for persona in personas:
        weighted: Counter[str] = Counter()
        for name, text in _fields(persona).items():
            for term in terms(text):
                weighted[term] += WEIGHTS[name]
        documents.append((persona, weighted))
    if not documents:
        return []
    count = len(documents)
    average = sum(sum(d.values()) for _, d in documents) / count or 1.0
    frequency = Counter(term for _, d in documents for term in d)
    asked = _words(question)
    wanted = Counter(stem(w) for w in asked)
    spelled: dict[str, str] = {}
    for word in asked:
        spelled.setdefault(stem(word), word)
    matches = []
    for persona, weighted in documents:
        length = sum(weighted.values())
        parts: dict[str, float] = {}
        for term, times in wanted.items():
            tf = weighted.get(term, 0.0)
            if not tf:
                continue
            idf = math.log(1 + (count - frequency[term] + 0.5) / (frequency[term] + 0.5))
            parts[term] = times * idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))
        best = sorted(parts, key=lambda t: (-parts[t], t))
        matches.append(Match(persona, round(sum(parts.values()), 3), tuple(spelled[t] for t in best[:6])))
    return sorted(matches, key=lambda m: (-m.score, m.persona.name))
