"""Dialogue scripts: one turn per line, checked as a whole before anything is generated.

    # a comment; blank lines are skipped
    Alice: Hello there, how are you?
    [Bob] Fine, thanks. [speed 1.2]
    [pause 0.8]
    Alice: Good to hear. [pause 0.5]

* ``Name: text`` or ``[Name] text``: ``Name`` is a voice (any case).
* ``[speed X]`` in a line speaks it at that speed (the engine's speed range).
* ``[pause X]`` alone on a line is X seconds of silence; in a line, X seconds after it.

Every problem (no speaker, an unknown voice, a line with nothing to say, a bad number, a line
too long) is collected with its line number and raised together as one :class:`ScriptError`.

Bounded before it is expanded: the script's size and line count (pause lines count too) are
checked before any line is parsed, each line's length before its patterns run, and the pauses'
total once parsed. The patterns are linear in the line (no two quantifiers that can take the
same characters in turn); the speaker of 'Name: text' is found with ``str.partition``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable

from engine.errors import InputError
from studio.voices.names import name_key

MAX_PAUSE_S = 10.0
MAX_PROBLEMS_SHOWN = 10
_PAUSE_LINE = re.compile(r"^\[\s*pause\b([^\]]*)\]$", re.IGNORECASE)
_BRACKET_TURN = re.compile(r"^\[([^\[\]]+)\]\s*(.*)$")
_TAG = re.compile(r"\[([^\[\]]*)\]")
_KEYWORD_TAG = re.compile(r"^\s*(speed|pause)\b(.*)$", re.IGNORECASE | re.DOTALL)
LINE_SLACK = 200  # characters a line may have beyond the text limit (name, tags)


@dataclasses.dataclass(frozen=True)
class Turn:
    """One spoken line: who says what, at what speed (None: the default), and the pause after it."""

    line_no: int
    speaker: str  # as written in the script
    text: str
    speed: float | None = None
    pause_after: float = 0.0


@dataclasses.dataclass(frozen=True)
class Pause:
    """Silence on a line of its own."""

    line_no: int
    seconds: float


class ScriptError(InputError):
    """The script has problems; ``problems`` lists ``(line number, message)`` (0: the whole script)."""

    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = list(problems)
        shown = [f"Line {n}: {m}" if n else m for n, m in self.problems[:MAX_PROBLEMS_SHOWN]]
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more.")
        count = len(self.problems)
        super().__init__(f"The script has {count} problem{'s' if count != 1 else ''}; nothing was generated.\n"
                         + "\n".join(shown))


def parse_script(text: str | None, voices: Iterable[str], *, max_lines: int, max_text_chars: int,
                 speed_range: tuple[float, float], max_pause_total: float = 300.0) -> list[Turn | Pause]:
    """The script's turns and pauses in order; :class:`ScriptError` naming every bad line.

    ``voices`` are the names a turn may use (compared ignoring case); ``max_lines`` bounds the
    spoken and pause lines together, ``max_pause_total`` the seconds of all pauses."""
    text = text or ""
    _check_size(text, max_lines, max_text_chars)
    known = {name_key(" ".join(v.split())): v for v in voices}
    items: list[Turn | Pause] = []
    problems: list[tuple[int, str]] = []
    counted = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        counted += 1
        if counted > max_lines:
            problems.append((0, f"The script has more than {max_lines} lines; the limit is {max_lines} "
                                "(F5_MAX_SCRIPT_LINES; spoken and pause lines count). Please split it."))
            break
        if len(line) > max_text_chars + LINE_SLACK:
            problems.append((number, f"the line is {len(line)} characters long; the limit is {max_text_chars} "
                                     "(F5_MAX_TEXT_CHARS)."))
            continue
        pause = _PAUSE_LINE.match(line)
        if pause:
            seconds = _number(pause.group(1), "pause", (0.0, MAX_PAUSE_S), number, problems)
            if seconds is not None:
                items.append(Pause(number, seconds))
            continue
        turn = _turn(line, number, known, max_text_chars, speed_range, problems)
        if turn is not None:
            items.append(turn)
    spoken = sum(isinstance(item, Turn) for item in items)
    if not problems and not spoken:
        problems.append((0, "The script is empty: write one line per turn, as 'Name: text' or '[Name] text'."))
    paused = sum(item.seconds if isinstance(item, Pause) else item.pause_after for item in items)
    if paused > max_pause_total:
        problems.append((0, f"The script's pauses add up to {paused:g} s; the limit is {max_pause_total:g} s "
                            "(F5_MAX_PAUSE_SECONDS). Please shorten them."))
    if problems:
        raise ScriptError(problems)
    return items


def _check_size(text: str, max_lines: int, max_text_chars: int) -> None:
    """Refuse a script too big to be ``max_lines`` lines of ``max_text_chars`` before reading it."""
    limit = max_lines * (max_text_chars + LINE_SLACK)
    if len(text) > limit:
        raise ScriptError([(0, f"The script is {len(text)} characters long; the limit is {limit} "
                               "(F5_MAX_SCRIPT_LINES lines of F5_MAX_TEXT_CHARS). Please split it.")])
    if text.count("\n") > 10 * max_lines + 100:  # blank and comment lines are cheap, but not free
        raise ScriptError([(0, f"The script has {text.count(chr(10)) + 1} lines; the limit is {10 * max_lines + 100} "
                               "(ten times F5_MAX_SCRIPT_LINES, blank lines included). Please split it.")])


def _colon_turn(line: str) -> tuple[str, str] | None:
    """``('Name', 'text')`` of 'Name: text' (the name: before the first colon, no brackets)."""
    head, sep, body = line.partition(":")
    head = head.rstrip()
    if not sep or not head or "[" in head or "]" in head:
        return None
    return head, body.lstrip()


def _turn(line: str, number: int, known: dict[str, str], max_text_chars: int, speed_range: tuple[float, float],
          problems: list[tuple[int, str]]) -> Turn | None:
    match = _BRACKET_TURN.match(line)
    if match and _KEYWORD_TAG.match(match.group(1)):
        problems.append((number, f"start the line with the speaker's name, e.g. 'Alice: {line}'."))
        return None
    parts = match.groups() if match else _colon_turn(line)
    if not parts:
        problems.append((number, "no speaker. Write 'Name: text' or '[Name] text'."))
        return None
    speaker, body = " ".join(parts[0].split()), parts[1]
    before = len(problems)
    if name_key(speaker) not in known:
        names = ", ".join(sorted(known.values(), key=name_key)[:8]) or "none yet"
        problems.append((number, f"unknown voice {speaker!r}. Save it in the Voices tab or upload a clip for it "
                                 f"here (voices: {names})."))
    speed, pause_after = None, 0.0
    for tag in _TAG.findall(body):
        keyword = _KEYWORD_TAG.match(tag)
        if keyword is None:
            problems.append((number, f"unknown tag [{tag}]; use [speed 1.2] or [pause 0.5]."))
        elif keyword.group(1).lower() == "speed":
            speed = _number(keyword.group(2), "speed", speed_range, number, problems)
        else:
            pause_after = _number(keyword.group(2), "pause", (0.0, MAX_PAUSE_S), number, problems) or 0.0
    words = " ".join(_TAG.sub(" ", body).split())
    if not words:
        problems.append((number, f"{speaker} has nothing to say (the line is empty)."))
    elif len(words) > max_text_chars:
        problems.append((number, f"the line is {len(words)} characters long; the limit is {max_text_chars}."))
    if len(problems) > before:
        return None
    return Turn(number, speaker, words, speed, pause_after)


def _number(raw: str, what: str, bounds: tuple[float, float], number: int,
            problems: list[tuple[int, str]]) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        problems.append((number, f"[{what} ...] needs a number, e.g. [{what} {'1.2' if what == 'speed' else '0.5'}]."))
        return None
    low, high = bounds
    if not (low < value <= high if what == "pause" else low <= value <= high):
        problems.append((number, f"the {what} must be {'more than' if what == 'pause' else 'from'} {low:g} "
                                 f"{'and at most' if what == 'pause' else 'to'} {high:g} (got {raw.strip()})."))
        return None
    return value
