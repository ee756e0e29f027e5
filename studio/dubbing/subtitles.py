"""Subtitle files for dubbing: SRT (parsed by the ``srt`` library) and WebVTT (parsed here), turned
into checked :class:`Cue` values with their speaker.

Why WebVTT is parsed here: webvtt-py 0.6 skips a malformed cue block without a word, so a bad
timestamp would silently drop a line from the dub; this parser names the line instead. SRT parse
errors from ``srt`` carry a character offset, which becomes a line number.

A cue's speaker comes from a WebVTT voice span (``<v Alice>Hi``) or a ``Name:`` prefix
(``Alice: Hi``); other markup (``<i>``, ``{\\an8}``) is removed. Every problem (a malformed block,
a bad time, a cue with no text, overlapping cues, too many cues) is collected and raised as one
:class:`SubtitleError` naming each line or cue.

Bounded before it is expanded: the file's size and its number of timing lines are checked before
it is parsed, hours past :data:`MAX_HOUR_DIGITS` digits are a bad time, and no cue may end after
the track limit (F5_MAX_TRACK_SECONDS) so a single late cue cannot ask for hours of silence.
The markup patterns never let one attempt run past the next ``<`` or ``{``, so they are linear.
"""

from __future__ import annotations

import dataclasses
import html
import re

from engine.errors import InputError

MAX_PROBLEMS_SHOWN = 10
MAX_HOUR_DIGITS = 4
CUE_SLACK = 300  # characters a cue may have beyond its text (number, timing line, markup)
_VTT_TIME = re.compile(r"^(?:(\d{1,4}):)?([0-5]\d):([0-5]\d)\.(\d{3})$")
_SRT_TIMING_LINE = re.compile(r"^\s*\d+:\d+:\d+[,.]\d+\s*-->")
_VOICE = re.compile(r"<v(?:\.[^\s<>]*)?\s([^<>]+)>", re.IGNORECASE)
_MARKUP = re.compile(r"<[^<>]*>|\{\\[^{}]*\}")
_NAME_PREFIX = re.compile(r"^([^\W\d][^:\n]{0,39}?)\s*:\s+(\S.*)$", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class Cue:
    """One subtitle: its place in the file, its time slot, its words and who says them."""

    number: int  # 1-based position in the file
    line_no: int  # line of its timing line (0 where unknown)
    start_s: float
    end_s: float
    text: str  # plain words, markup and speaker prefix removed
    speaker: str | None = None

    @property
    def slot_s(self) -> float:
        """How long the cue is on screen."""
        return self.end_s - self.start_s

    def where(self) -> str:
        """'cue 3 (line 12, 00:00:04.200)' for messages."""
        line = f"line {self.line_no}, " if self.line_no else ""
        return f"cue {self.number} ({line}{format_time(self.start_s)})"


class SubtitleError(InputError):
    """The subtitle file has problems; ``problems`` lists each message."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = self.problems[:MAX_PROBLEMS_SHOWN]
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more.")
        count = len(self.problems)
        super().__init__(f"The subtitle file has {count} problem{'s' if count != 1 else ''}; nothing was "
                         "generated.\n" + "\n".join(shown))


def format_time(seconds: float) -> str:
    """Seconds as ``hh:mm:ss.mmm``."""
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def decode(data: bytes) -> str:
    """A subtitle file's text (UTF-8, with or without a BOM), or :class:`SubtitleError`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SubtitleError([f"Line {line}: the file is not UTF-8 text. Please save it as UTF-8."]) from None
    if "\x00" in text:
        raise SubtitleError(["The file is not a text file (it contains NUL bytes). Please upload an .srt or .vtt file."])
    return text


def parse_subtitles(text: str, *, max_cues: int, max_text_chars: int, filename: str = "",
                    max_track_s: float = 7200.0) -> list[Cue]:
    """The file's cues (SRT or WebVTT, by its header or name), checked; :class:`SubtitleError` if not."""
    _check_size(text, max_cues, max_text_chars)
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    is_vtt = text.startswith("WEBVTT") or filename.lower().endswith(".vtt")
    cues, problems = (_parse_vtt if is_vtt else _parse_srt)(text)
    if not problems:
        problems = _check(cues, max_cues, max_text_chars, max_track_s)
    if problems:
        raise SubtitleError(problems)
    return cues


def speakers(cues: list[Cue]) -> list[str]:
    """The distinct speakers in order of first appearance."""
    return list(dict.fromkeys(cue.speaker for cue in cues if cue.speaker))


def _check_size(text: str, max_cues: int, max_text_chars: int) -> None:
    """Refuse a file with more timing lines than cues allowed, or too big to hold them, unparsed."""
    limit = max_cues * (max_text_chars + CUE_SLACK)
    if len(text) > limit:
        raise SubtitleError([f"The file is {len(text)} characters long; the limit is {limit} (F5_MAX_CUES cues of "
                             "F5_MAX_TEXT_CHARS). Please split it."])
    timings = text.count("-->")
    if timings > max_cues:
        raise SubtitleError([f"The file has {timings} cues; the limit is {max_cues} (F5_MAX_CUES). Please split it."])


# ---------------------------------------------------------------------- SRT


def _parse_srt(text: str) -> tuple[list[Cue], list[str]]:
    import srt

    try:
        subtitles = list(srt.parse(text))
    except srt.SRTParseError as error:
        return [], [_srt_problem(text, error)]
    except (ValueError, OverflowError) as error:
        return [], [f"A cue time is out of range ({str(error)[:80]}); write times as '01:02:03,456' "
                    f"(at most {MAX_HOUR_DIGITS} hour digits)."]
    if not subtitles:
        return [], ["The file has no subtitle cues. Please upload an SRT or WebVTT file."]
    timing_lines = [n for n, line in enumerate(text.split("\n"), 1) if _SRT_TIMING_LINE.match(line)]
    if len(timing_lines) != len(subtitles):
        timing_lines = [0] * len(subtitles)
    cues = []
    for number, (subtitle, line_no) in enumerate(zip(subtitles, timing_lines), 1):
        words, speaker = _words_and_speaker(subtitle.content)
        cues.append(Cue(number, line_no, subtitle.start.total_seconds(), subtitle.end.total_seconds(), words, speaker))
    return cues, []


def _srt_problem(text: str, error) -> str:
    start = error.expected_start + len(text[error.expected_start:]) - len(text[error.expected_start:].lstrip())
    line = text.count("\n", 0, start) + 1
    shown = text[start:].split("\n", 1)[0][:60]
    return (f"Line {line}: this is not a subtitle cue ({shown!r}). Each cue is a number, a "
            "'00:00:01,000 --> 00:00:02,500' line and its text, with a blank line between cues.")


# ---------------------------------------------------------------------- WebVTT


def _parse_vtt(text: str) -> tuple[list[Cue], list[str]]:
    lines = text.split("\n")
    first = lines[0] if lines else ""
    if not (first == "WEBVTT" or first.startswith(("WEBVTT ", "WEBVTT\t"))):
        return [], ["Line 1: a WebVTT file must start with 'WEBVTT'."]
    cues: list[Cue] = []
    problems: list[str] = []
    for start_line, block in _blocks(lines)[1:]:  # the first block is the header
        head = block[0]
        if re.match(r"^(NOTE|STYLE|REGION)(\s|$)", head):
            continue
        offset = 0 if "-->" in head else 1 if len(block) > 1 and "-->" in block[1] else None
        if offset is None:
            problems.append(f"Line {start_line}: this block is not a cue ({head[:60]!r}). A cue needs a "
                            "'00:00:01.000 --> 00:00:02.500' line (an identifier line may come before it).")
            continue
        line_no = start_line + offset
        timing = re.match(r"^(\S+)\s+-->\s+(\S+)(?:\s.*)?$", block[offset].strip())
        times = [_vtt_seconds(part) for part in timing.groups()] if timing else [None]
        if timing is None or None in times:
            problems.append(f"Line {line_no}: bad cue timing {block[offset].strip()[:60]!r}; write "
                            "'00:00:01.000 --> 00:00:02.500' (hours optional, at most "
                            f"{MAX_HOUR_DIGITS} digits; milliseconds with 3 digits).")
            continue
        payload = block[offset + 1:]
        if any("-->" in line for line in payload):
            problems.append(f"Line {line_no}: a blank line is missing after this cue's text.")
            continue
        words, speaker = _words_and_speaker("\n".join(payload))
        cues.append(Cue(len(cues) + 1, line_no, times[0], times[1], words, speaker))
    return cues, problems


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines with the line number of their first line."""
    blocks: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if blocks and blocks[-1][0] + len(blocks[-1][1]) == number:
            blocks[-1][1].append(line)
        else:
            blocks.append((number, [line]))
    return blocks


def _vtt_seconds(stamp: str) -> float | None:
    match = _VTT_TIME.match(stamp)
    if not match:
        return None
    hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


# ---------------------------------------------------------------------- both


def _words_and_speaker(payload: str) -> tuple[str, str | None]:
    """Plain words and the speaker (a voice span, or a 'Name:' prefix) of a cue's text."""
    voice = _VOICE.search(payload)
    speaker = " ".join(voice.group(1).split()) if voice else None
    words = " ".join(html.unescape(_MARKUP.sub(" ", payload)).split())
    if speaker is None:
        prefixed = _NAME_PREFIX.match(words)
        if prefixed:
            speaker, words = " ".join(prefixed.group(1).split()), prefixed.group(2).strip()
    return words, speaker


def _check(cues: list[Cue], max_cues: int, max_text_chars: int, max_track_s: float) -> list[str]:
    if not cues:
        return ["The file has no subtitle cues. Please upload an SRT or WebVTT file."]
    if len(cues) > max_cues:
        return [f"The file has {len(cues)} cues; the limit is {max_cues} (F5_MAX_CUES). Please split it."]
    problems = []
    previous: Cue | None = None
    for cue in cues:
        where = cue.where().capitalize()
        if cue.end_s > max_track_s:
            problems.append(f"{where} ends at {format_time(cue.end_s)}; a dub may be at most "
                            f"{format_time(max_track_s)} long (F5_MAX_TRACK_SECONDS).")
            break  # the cues after it are later still
        if cue.end_s <= cue.start_s:
            problems.append(f"{where} ends at {format_time(cue.end_s)}, not after it starts.")
        if not cue.text:
            problems.append(f"{where} has no text to speak.")
        elif len(cue.text) > max_text_chars:
            problems.append(f"{where} has {len(cue.text)} characters; the limit is {max_text_chars}.")
        if previous is not None and cue.start_s < previous.end_s:
            problems.append(f"{where} starts before cue {previous.number} ends ({format_time(previous.end_s)}): "
                            "cues must be in time order and must not overlap.")
        previous = cue
    return problems
