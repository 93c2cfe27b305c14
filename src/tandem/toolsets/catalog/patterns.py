"""Goal similarity for orchestration patterns: 0.5 TF-IDF cosine + 0.3 keyword overlap + 0.2 string similarity
(the seed's formula), ranked by similarity x success rate."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from tandem.store.catalog import Pattern
from tandem.toolsets.catalog.text_index import stem, words

COSINE_SHARE = 0.5
KEYWORD_SHARE = 0.3
STRING_SHARE = 0.2


@dataclass(frozen=True)
class PatternMatch:
    pattern: Pattern
    similarity: float
    score: float

    def as_dict(self) -> dict[str, object]:
        """The seed's ``PatternMatchResult``."""
        return {
            "pattern": self.pattern.as_dict(),
            "success_rate": round(self.pattern.success_rate, 4),
            "similarity": round(self.similarity, 4),
            "task_count": self.pattern.uses,
        }


class PatternIndex:
    """TF-IDF vectors of the stored patterns' goals; rebuilt whenever a pattern is added or removed."""

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        self.patterns = list(patterns)
        self._terms = [[stem(w) for w in words(p.goal)] for p in self.patterns]
        frequency: Counter[str] = Counter()
        for terms in self._terms:
            frequency.update(set(terms))
        count = len(self.patterns)
        self._idf = {term: math.log((1 + count) / (1 + df)) + 1 for term, df in frequency.items()}
        self._default_idf = math.log(1 + count) + 1
        self._vectors = [self._vector(terms) for terms in self._terms]

    def _vector(self, terms: list[str]) -> dict[str, float]:
        counts = Counter(terms)
        vector = {t: c * self._idf.get(t, self._default_idf) for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {t: v / norm for t, v in vector.items()}

    def similarity(self, goal: str, at: int) -> float:
        terms = [stem(w) for w in words(goal)]
        return self._similarity(goal, terms, self._vector(terms), at)

    def _similarity(self, goal: str, terms: list[str], vector: dict[str, float], at: int) -> float:
        other = self._vectors[at]
        cosine = sum(v * other.get(t, 0.0) for t, v in vector.items())
        mine, theirs = set(terms), set(self._terms[at])
        keywords = len(mine & theirs) / len(mine | theirs) if mine | theirs else 0.0
        string = fuzz.ratio(goal.lower(), self.patterns[at].goal.lower()) / 100
        return COSINE_SHARE * cosine + KEYWORD_SHARE * keywords + STRING_SHARE * string

    def match(self, goal: str, min_similarity: float, limit: int = 5) -> list[PatternMatch]:
        """Patterns at least ``min_similarity`` similar to ``goal``, by similarity x success rate, best first."""
        terms = [stem(w) for w in words(goal)]
        vector = self._vector(terms)
        found = []
        for at, pattern in enumerate(self.patterns):
            similarity = self._similarity(goal, terms, vector, at)
            if similarity >= min_similarity:
                found.append(PatternMatch(pattern, similarity, similarity * pattern.success_rate))
        found.sort(key=lambda m: (-m.score, -m.similarity, m.pattern.id))
        return found[:limit]
