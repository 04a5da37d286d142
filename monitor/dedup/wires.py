"""Wire attribution: which news agencies a report credits ("(Reuters) -", "reported Reuters,
cited by BTA", "the AP reports", "KCNA reported", "according to Interfax").

A name alone is not a credit — "Reuters" in "a Reuters photographer" is not attribution —
so an agency counts only inside an attribution phrase: a dateline, a reporting verb next to
it, or "according to / cited by / quoted by" before it.
"""

from __future__ import annotations

import regex

# canonical name -> the ways reports write it (case matters: "AP", not "ap")
AGENCIES: dict[str, tuple[str, ...]] = {
    "Reuters": ("Reuters",),
    "AP": ("AP", "Associated Press"),
    "AFP": ("AFP", "Agence France-Presse", "Agence France Presse"),
    "BTA": ("BTA", "Bulgarian News Agency"),
    "KCNA": ("KCNA", "Korean Central News Agency"),
    "Yonhap": ("Yonhap",),
    "Interfax": ("Interfax",),
    "TASS": ("TASS", "Tass"),
    "RIA Novosti": ("RIA Novosti", "RIA"),
    "Sputnik": ("Sputnik", "Sputnik News"),
    "Xinhua": ("Xinhua",),
    "Kyodo": ("Kyodo",),
    "Anadolu": ("Anadolu", "Anadolu Agency"),
    "dpa": ("dpa", "DPA"),
    "EFE": ("EFE",),
    "ANSA": ("ANSA",),
    "PTI": ("PTI", "Press Trust of India"),
    "IRNA": ("IRNA",),
    "Bloomberg": ("Bloomberg",),
}

_NAMES = {alias: name for name, aliases in AGENCIES.items() for alias in aliases}
_ALIAS = "|".join(sorted(map(regex.escape, _NAMES), key=len, reverse=True))
_VERB = (
    r"(?:reported|reports|said|says|added|adds|wrote|writes|noted|notes|quoted|quotes"
    r"|cited|cites|announced|stated)"
)
_BEFORE = (
    r"(?:according\s+to|reported\s+by|cited\s+by|citing|quoted\s+by|as\s+quoted\s+by|via"
    r"|reported|reports|told)"
)
_APOSTROPHES = "'\u2019"
_DASHES = "\\-\u2013\u2014"
_QUALIFIER = rf"(?:[\p{{L}}{_APOSTROPHES}\-]+\s+){{0,5}}?"  # "Russia's Interfax news agency"
_PATTERNS = [
    regex.compile(rf"\((?P<a>{_ALIAS})\)\s*[{_DASHES}]"),  # "(Reuters) -", the dateline
    regex.compile(rf"\b{_BEFORE}\s+(?:the\s+)?{_QUALIFIER}(?P<a>{_ALIAS})\b"),
    regex.compile(
        rf"\b(?P<a>{_ALIAS})(?:\s+(?:news\s+agency|agency|reporter|reporters))?,?\s+{_VERB}\b"
    ),
    regex.compile(rf"\bthe\s+(?P<a>{_ALIAS})\s+reports\b"),
]


# Every credit names an agency: a text that names none (most) needs no look at the patterns.
_ANY_ALIAS = regex.compile(_ALIAS)


def credited(text: str) -> tuple[str, ...]:
    """The agencies a text credits, in order of first credit."""
    if _ANY_ALIAS.search(text) is None:
        return ()
    found: dict[str, int] = {}
    for pattern in _PATTERNS:
        for m in pattern.finditer(text):
            name = _NAMES[m.group("a")]
            found[name] = min(found.get(name, m.start()), m.start())
    return tuple(sorted(found, key=found.__getitem__))
