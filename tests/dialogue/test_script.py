"""The dialogue script parser: both forms, tags and pauses, every bad line named, limits."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from studio.dialogue.script import MAX_PAUSE_S, Pause, ScriptError, Turn, parse_script

VOICES = ["Alice", "Bob Smith", "US male (espeak-ng en-us+m3)"]
LIMITS = dict(max_lines=50, max_text_chars=200, speed_range=(0.3, 2.0))


def script(text: str, **overrides):
    return parse_script(text, VOICES, **{**LIMITS, **overrides})


def problems(text: str, **overrides) -> list[tuple[int, str]]:
    with pytest.raises(ScriptError) as caught:
        script(text, **overrides)
    assert isinstance(caught.value, InputError)
    assert str(caught.value).startswith("The script has")
    return caught.value.problems


# ---------------------------------------------------------------------- dialogue scripts


def test_a_script_in_both_forms_with_tags_and_pauses():
    items = script("""# a comment

Alice: Hello there, how are you?
[bob smith]   Fine, thanks. [speed 1.2]
[pause 0.8]
ALICE: [pause 0.5] Good to hear: really.
  [Pause 1]
US male (espeak-ng en-us+m3): The end.
""")
    assert items == [
        Turn(3, "Alice", "Hello there, how are you?"),
        Turn(4, "bob smith", "Fine, thanks.", speed=1.2),
        Pause(5, 0.8),
        Turn(6, "ALICE", "Good to hear: really.", pause_after=0.5),
        Pause(7, 1.0),
        Turn(8, "US male (espeak-ng en-us+m3)", "The end."),
    ]


def test_every_bad_line_is_named_before_anything_runs():
    found = problems("""Alice: fine
Carol: who is Carol?
Bob Smith:
[Alice]
just words without a speaker
Alice: [speed 9] too fast
Alice: [speed fast] not a number
Alice: [shout] unknown tag
[pause -1]
[pause 99]
[speed 1.2] Alice: tag first
Alice: [pause 0.5]
""")
    lines = [number for number, _ in found]
    assert lines == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], found
    text = dict(found)
    assert "unknown voice 'Carol'" in text[2] and "Alice, Bob Smith" in text[2]
    assert "Bob Smith has nothing to say" in text[3] and "Alice has nothing to say" in text[4]
    assert "no speaker" in text[5] and "Name: text" in text[5]
    assert "speed must be from 0.3 to 2 (got 9)" in text[6]
    assert "[speed ...] needs a number" in text[7]
    assert "unknown tag [shout]" in text[8]
    assert f"pause must be more than 0 and at most {MAX_PAUSE_S:g} (got -1)" in text[9]
    assert "(got 99)" in text[10]
    assert "start the line with the speaker's name" in text[11]
    assert "nothing to say" in text[12]


def test_the_message_lists_the_lines():
    with pytest.raises(ScriptError) as caught:
        script("Alice: hi\nZed: hello\n\nYan: hey")
    message = str(caught.value)
    assert message.splitlines() == [
        "The script has 2 problems; nothing was generated.",
        "Line 2: unknown voice 'Zed'. Save it in the Voices tab or upload a clip for it here "
        "(voices: Alice, Bob Smith, US male (espeak-ng en-us+m3)).",
        "Line 4: unknown voice 'Yan'. Save it in the Voices tab or upload a clip for it here "
        "(voices: Alice, Bob Smith, US male (espeak-ng en-us+m3)).",
    ]


@pytest.mark.parametrize("text", ["", "   \n\n# only a comment\n", None, "[pause 1]"])
def test_an_empty_script_is_refused(text):
    assert problems(text) == [(0, "The script is empty: write one line per turn, as 'Name: text' or '[Name] text'.")]


def test_script_limits():
    too_many = "\n".join(f"Alice: line {i}" for i in range(4))
    assert "more than 3 lines; the limit is 3 (F5_MAX_SCRIPT_LINES" in problems(too_many, max_lines=3)[0][1]
    assert problems("Alice: " + "word " * 50, max_text_chars=100)[0] == (
        1, "the line is 249 characters long; the limit is 100.")


def test_many_problems_are_summarised():
    with pytest.raises(ScriptError) as caught:
        script("\n".join(f"Nobody{i}: hi" for i in range(15)))
    assert len(caught.value.problems) == 15 and str(caught.value).endswith("... and 5 more.")


# ---------------------------------------------------------------------- subtitles
