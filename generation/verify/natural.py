"""Values stated in natural language, compared with what earlier turns show (rules verifier, checks 4, 8, 9).

A real LLM writes "$5,021.31", "2 accounts", "11:00 AM", "May 22nd", "a 60-minute call" where the tool output
holds 5021.31, a list of two, ``2024-05-22T11:00:00`` and 60. `unstated` reads those forms, judges each against
the earlier turns (`Facts`) and then hands the rest of the text to the whole-token id check, so a wrong id or
amount ("5,012.31" for 5021.31, "500" for 50, "12:00" for 11:00, ACC999 never shown) is still reported.
Deterministic and regex-only (no model, no locale tables beyond English month and number words).
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Optional

from ..resolve import NUM, id_tokens, mentions_token

MONTHS = {m: k + 1 for k, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                          "september", "october", "november", "december"])}
MONTHS.update({m[:3]: k for m, k in list(MONTHS.items())})
_MON = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|" \
       r"nov(?:ember)?|dec(?:ember)?)"
WORDS = {w: k + 1 for k, w in enumerate("one two three four five six seven eight nine ten eleven twelve thirteen "
                                         "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_WORD = "|".join(WORDS)
UNITS = {"second": 1 / 60, "sec": 1 / 60, "minute": 1, "min": 1, "hour": 60, "hr": 60, "day": 1440, "week": 10080}
_UNIT = r"(seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?)"

ISO_DT = re.compile(r"(?<![\w-])(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
                    r"(?![\w-])")
SLASH_DATE = re.compile(r"(?<![\w/.])(\d{1,2})/(\d{1,2})/(\d{4})(?![\w/])")
MON_DAY = re.compile(rf"\b{_MON}\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?", re.I)
DAY_MON = re.compile(rf"(?<![\w.])(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MON}\b\.?(?:,?\s+(\d{{4}})\b)?", re.I)
TIME = re.compile(r"(?<![\w:.])(\d{1,2}):(\d{2})(?::\d{2})?(?:\s*([ap])\.?m\b\.?)?(?![\w:])", re.I)
TIME_AMPM = re.compile(r"(?<![\w:.])(\d{1,2})\s*([ap])\.?m\b\.?", re.I)
DURATION = re.compile(rf"(?<![\w.])(\d+(?:\.\d+)?)[\s-]*{_UNIT}\b", re.I)
ORDINAL = re.compile(r"(?<![\w.])\d+(?:st|nd|rd|th)\b", re.I)
# "1. ACC27659 ..." / "2) ..." at the start of a line: a list's item number, not a value (live replies list results)
ENUMERATOR = re.compile(r"(?m)^[ \t>*-]*(\d{1,2})[.)](?=\s)")
NUMBER = re.compile(r"(?<![\w.,/@-])(?:(?P<s1>[-+\u2212])\s?)?(?P<cur>[$\u20ac\u00a3]\s?)?(?:(?P<s2>[-\u2212])\s?)?"
                    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<dec>\.\d+)?(?:\s?(?P<pct>%|percent\b))?(?![\w]|[.,]\d|-\w)", re.I)
# NUMBER is never part of a longer token ("2024-05-2", "T-1234", "v1.2.3"): such a token stays whole for the id check
WORD_COUNT = re.compile(rf"\b({_WORD})\s+(?:[a-z]+\s+)?([a-z]+s)\b", re.I)
# a count noun after a number: "2 accounts", "2 open tickets" (not a unit: "2 hours" is a duration)
COUNT_AFTER = re.compile(r"\s+(?:[a-z]+\s+)?([a-z]+s)\b", re.I)
ONE_THING = re.compile(r"\s+(?:[a-z]+\s+)?[a-z]+\b", re.I)
# a bare integer closed by a bracket, a colon or " of": a count written without its noun next to it
BARE_COUNT = re.compile(r"\)|:|\s+of\b|\s+(?:are|is|were|was)\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
HEDGE = re.compile(r"(?:\babout|\baround|\broughly|\bapproximately|\bapprox\.?|\bnearly|\balmost|\bover|\bunder|"
                   r"\bmore than|\bless than|\bsome|~)\s*$", re.I)
# chosen: only a number in a sentence with one of these words is read as computed from shown values (a total, a
# difference). Without the word a mistyped amount too often equals some sum or difference of two shown numbers
# (measured: 177.68 for a price 177.86 = 177.86 + -0.18, a change shown beside it); an uncued computation is
# left to the model verifier's judgement of the reply rather than accepted here.
# Words that also name fields or tools ("daily change", "after", "left") are not cues.
CUE = re.compile(r"\b(?:in total|totals?|totalling|totaling|sum|in all|altogether|combined|overall|difference|"
                 r"(?:more|less|fewer|higher|lower) than|remaining|leaving|net|plus|minus|add(?:s|ed)? up|"
                 r"comes? to|new balance)\b", re.I)
EPS = 1e-9
MAX_RECENT = 40  # chosen: at most this many recent output numbers enter pairwise sums (cheap: < 1,600 pairs)


def _hour(h: int, ap: Optional[str]) -> int:
    if not ap:
        return h
    return (h % 12) + (12 if ap.lower() == "p" else 0)


def _year(y: Optional[str]) -> Optional[int]:
    return int(y) if y else None


def _number(m: re.Match) -> tuple[float, int, bool]:
    """(value, decimals shown, is a percentage) of a NUMBER match."""
    neg = (m.group("s1") or m.group("s2") or "") in ("-", "\u2212")
    v = float(m.group("int").replace(",", "") + (m.group("dec") or ""))
    return (-v if neg else v), len(m.group("dec") or ".") - 1, bool(m.group("pct"))


class Facts:
    """What earlier turns show, read once per turn: their text, numbers (normalised), dates and times."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.numbers: set[float] = set()
        self.dates: set[tuple[Optional[int], int, int]] = set()
        self.times: set[tuple[int, int]] = set()

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    def add(self, txt: str) -> None:
        if not txt:
            return
        self.texts.append(txt)
        self.numbers |= {float(x) for x in NUM.findall(txt)}
        for m in ISO_DT.finditer(txt):
            self.dates.add((int(m.group(1)), int(m.group(2)), int(m.group(3))))
            if m.group(4):
                self.times.add((int(m.group(4)), int(m.group(5))))
        for m in SLASH_DATE.finditer(txt):
            a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
            self.dates |= {(y, a, b), (y, b, a)}
        for m in MON_DAY.finditer(txt):
            self.dates.add((_year(m.group(3)), MONTHS[m.group(1).lower()[:3]], int(m.group(2))))
        for m in DAY_MON.finditer(txt):
            self.dates.add((_year(m.group(3)), MONTHS[m.group(2).lower()[:3]], int(m.group(1))))
        for m in TIME.finditer(txt):
            self.times.add((_hour(int(m.group(1)), m.group(3)), int(m.group(2))))
        for m in TIME_AMPM.finditer(txt):
            self.times.add((_hour(int(m.group(1)), m.group(2)), 0))
        for m in NUMBER.finditer(txt):
            v, _, pct = _number(m)
            self.numbers.add(v)
            if pct:
                self.numbers.add(v / 100)  # chosen: "15%" shows 15 and 0.15, either reading
        for m in DURATION.finditer(txt):
            mins = float(m.group(1)) * UNITS[_unit(m.group(2))]
            self.numbers |= {mins, mins / 60, mins * 60}
        for m in WORD_COUNT.finditer(txt):
            self.numbers.add(float(WORDS[m.group(1).lower()]))
        for w, k in WORDS.items():  # "two of them", "one hour": a number word states its number
            if re.search(rf"\b{w}\b", txt, re.I):
                self.numbers.add(float(k))

    # ------------------------------------------------------------------ judging one stated value
    def has_number(self, x: float, decimals: Optional[int] = None, tol: float = 0.0, signed: bool = False) -> bool:
        """Is x shown? Exact (decimals None), or rounded to the stated precision, or within `tol` (a hedge).
        chosen: in text the sign is not compared ("a debit of $50" for an amount -50); `signed` for arguments."""
        lim = max(tol, 0.5 * 10 ** -decimals + EPS if decimals is not None else EPS)
        if signed:
            return any(abs(x - y) <= lim for y in self.numbers)
        return any(abs(abs(x) - abs(y)) <= lim for y in self.numbers)

    def has_date(self, y: Optional[int], mo: int, day: int) -> bool:
        return any(mo == m2 and day == d2 and (y is None or y2 is None or y == y2) for y2, m2, d2 in self.dates)

    def has_time(self, h: int, mi: int, ap: Optional[str]) -> bool:
        if ap:
            hs = {_hour(h, ap)}
        else:  # chosen: a bare "11:00" may be read on a 12-hour clock ("3:30" for 15:30)
            hs = {h} | ({h + 12} if h < 12 else set()) | ({0} if h == 12 else set())
        return any((x, mi) in self.times for x in hs)


def _unit(u: str) -> str:
    u = u.lower().rstrip("s")
    return {"minute": "minute", "min": "min", "hour": "hour", "hr": "hr", "day": "day", "week": "week",
            "second": "second", "sec": "sec"}.get(u, u)


def recent_numbers(outputs: Iterable[Any]) -> list[float]:
    """Numeric leaves of tool outputs (parsed JSON), the latest last, plus the per-key sums of listed records."""
    out: list[float] = []

    def walk(v: Any) -> None:
        if isinstance(v, bool) or v is None:
            return
        if isinstance(v, (int, float)):
            out.append(float(v))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
            recs = [x for x in v if isinstance(x, dict)]
            for k in {k for r in recs for k, x in r.items() if isinstance(x, (int, float)) and not isinstance(x, bool)}:
                out.append(float(sum(r.get(k) or 0 for r in recs if isinstance(r.get(k), (int, float)))))

    for o in outputs:
        if isinstance(o, str):
            try:
                o = json.loads(o)
            except json.JSONDecodeError:
                continue
        walk(o)
    return out


def _computed(x: float, decimals: int, recent: list[float]) -> bool:
    """x is a sum or difference of two shown numbers (or a listed column's total), at the stated precision."""
    lim = 0.5 * 10 ** -decimals + EPS
    r = recent[-MAX_RECENT:]
    if any(abs(abs(x) - abs(y)) <= lim for y in recent):  # column totals are in `recent` already
        return True
    for a in range(len(r)):
        for b in range(a + 1, len(r)):
            if abs(abs(x) - abs(r[a] + r[b])) <= lim or abs(abs(x) - abs(r[a] - r[b])) <= lim:
                return True
    return False


def _sentence(text: str, pos: int) -> str:
    starts = [m.end() for m in re.finditer(r"[.!?](?=\s)|\n", text[:pos])]
    end = re.search(r"[.!?](?=\s|$)|\n", text[pos:])
    return text[starts[-1] if starts else 0: pos + (end.start() if end else len(text) - pos)]


def unstated(text: str, facts: Facts, *, counts: Iterable[int] = (), recent: Optional[list[float]] = None,
             entities_only: bool = False) -> list[str]:
    """The values `text` states that no earlier turn shows (their surface form), in order.

    counts: list lengths (and other counts) a "2 accounts" may state; recent: numbers of the outputs this text
    summarises (computed totals are accepted against them; None: no computed values, e.g. in arguments);
    entities_only: also check e-mail addresses (free-text arguments)."""
    bad: list[str] = []
    counts = set(counts)
    spans: list[tuple[int, int]] = []
    taken = lambda m: any(a < m.end() and m.start() < b for a, b in spans)  # noqa: E731

    def claim(m: re.Match, ok: bool) -> None:
        spans.append(m.span())
        if not ok:
            bad.append(m.group(0).strip())

    for m in ISO_DT.finditer(text):
        ok = facts.has_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if m.group(4):
            ok = ok and facts.has_time(int(m.group(4)), int(m.group(5)), None)
        claim(m, ok)
    for m in SLASH_DATE.finditer(text):
        if not taken(m):
            a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
            claim(m, facts.has_date(y, a, b) or facts.has_date(y, b, a))
    for m in MON_DAY.finditer(text):
        if not taken(m):
            claim(m, facts.has_date(_year(m.group(3)), MONTHS[m.group(1).lower()[:3]], int(m.group(2))))
    for m in DAY_MON.finditer(text):
        if not taken(m):
            claim(m, facts.has_date(_year(m.group(3)), MONTHS[m.group(2).lower()[:3]], int(m.group(1))))
    for m in TIME.finditer(text):
        if not taken(m):
            claim(m, facts.has_time(int(m.group(1)), int(m.group(2)), m.group(3)))
    for m in TIME_AMPM.finditer(text):
        if not taken(m):
            claim(m, facts.has_time(int(m.group(1)), 0, m.group(2)))
    for m in DURATION.finditer(text):
        if not taken(m):
            n = float(m.group(1))
            mins = n * UNITS[_unit(m.group(2))]
            claim(m, any(facts.has_number(v, None) for v in {n, mins, mins / 60, mins * 60, mins / 1440}))
    for m in ORDINAL.finditer(text):
        if not taken(m):
            claim(m, True)  # "the 2nd one", "3rd": a position, not a value
    for m in ENUMERATOR.finditer(text):
        if not taken(m):
            claim(m, True)
    for m in NUMBER.finditer(text):
        if taken(m):
            continue
        x, dec, pct = _number(m)
        ok = facts.has_number(x, dec) or (pct and facts.has_number(x / 100, dec + 2))
        if not ok and dec == 0 and not m.group("cur") and not pct and (COUNT_AFTER.match(text, m.end())
                                                                       or BARE_COUNT.match(text, m.end())):
            ok = int(x) in counts  # "2 accounts": an output listed two; "Your orders (15):", "all 18 of your ..."
        if not ok and x == 1 and dec == 0 and not m.group("cur") and not pct and ONE_THING.match(text, m.end()):
            ok = 1 in counts  # "1 payee", "1 result"
        if not ok and dec == 0 and HEDGE.search(text[:m.start()]):
            zeros = len(m.group("int").replace(",", "")) - len(m.group("int").replace(",", "").rstrip("0"))
            ok = zeros > 0 and facts.has_number(x, None, tol=0.5 * 10 ** zeros)  # "about 5,000" for 5021.31
        if not ok and recent is not None and CUE.search(_sentence(text, m.start())):
            ok = _computed(x, dec, recent)
        claim(m, ok)
    # chosen: a written-out count ("two accounts") is read (an earlier "two" grounds a 2 in an argument, see
    # Facts.add) but never rejected: number words are prose far more often than results ("between two
    # airports" in a tool's description), and a digit-free word was never checked before either
    if entities_only:
        for m in EMAIL.finditer(text):
            if not taken(m):
                claim(m, mentions_token(facts.text, m.group(0)))
    rest = list(text)
    for a, b in spans:
        rest[a:b] = " " * (b - a)
    shown = facts.text
    for tok in dict.fromkeys(id_tokens("".join(rest))):
        if not mentions_token(shown, tok):
            bad.append(tok)
    return bad


def masked(text: str) -> str:
    """The text without its dates, times, durations and ordinals (a user's "May 22nd" or "11am" is a date or a
    time, not an id that a later call must repeat)."""
    rest = list(text)
    for rx in (ISO_DT, SLASH_DATE, MON_DAY, DAY_MON, TIME, TIME_AMPM, DURATION, ORDINAL, ENUMERATOR):
        for m in rx.finditer(text):
            rest[m.start():m.end()] = " " * (m.end() - m.start())
    return "".join(rest)
