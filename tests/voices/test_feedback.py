"""What the page says while a long job runs (elapsed, time left) and where a refusal is shown."""

from __future__ import annotations

from studio.ui.feedback import JobClock, clock_text, error_html


def test_job_clock_says_elapsed_and_time_left_from_an_injected_clock():
    now = [100.0]
    clock = JobClock(clock=lambda: now[0])
    now[0] = 162.0  # 62 s after the start, a quarter done: 3 x 62 s left
    assert clock.text(0.25) == "1:02 elapsed, about 3:06 left"
    assert clock.text(0.01) == "1:02 elapsed", "no estimate before 2 % is done"
    assert clock.text(None) == "1:02 elapsed" and clock.text(1.0) == "1:02 elapsed"
    rewrite = clock.rewrite(lambda fraction, message: (fraction, message.upper()))
    assert rewrite(0.5, "line 3 of 6") == (0.5, "LINE 3 OF 6 · 1:02 elapsed, about 1:02 left")
    assert rewrite(None, "loading") == (None, "LOADING"), "a model load keeps its own words"
    assert clock_text(3725) == "1:02:05"


def test_error_block_has_one_problem_per_line_escaped_and_without_server_paths():
    block = error_html("The script has 2 problems; nothing was generated.\nLine 1: unknown voice '<Zed>'\n\n"
                       "Line 3: the clip /srv/data/voices/secret/clip.wav is silent")
    assert block.count("<p>") == 3 and 'role="alert"' in block
    assert "&lt;Zed&gt;" in block and "/srv/data" not in block and "…/clip.wav" in block
