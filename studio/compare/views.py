"""How the A/B tab shows a comparison: the details of each side (hidden in blind mode until the
pick), the reveal, and the tally table."""

from __future__ import annotations

import html

from studio.compare.runner import Comparison, Side
from studio.compare.store import TallyRow

HIDDEN = "*Blind: which variant this is, and how it was made, is shown after you pick.*"
TALLY_HEADERS = ["variant 1", "variant 2", "1 better", "2 better", "same", "verdicts"]
PICK_WORDS = {"A": "A is better", "B": "B is better", "same": "About the same"}


def side_details(side: Side, variant_name: str, show_model: bool) -> str:
    """Markdown: which variant, its settings, time, real-time factor, device and seed."""
    fast = " · int8 fast mode" if side.fast_mode else ""
    return (f"**Variant {variant_name}**: {html.escape(side.variant.label(show_model))}\n\n"
            f"{side.seconds:.2f} s of audio in {side.elapsed_s:.2f} s (real-time factor {side.rtf:.2f}) "
            f"on {html.escape(side.device)}{fast} · seed {side.seed}")


def shown_details(comparison: Comparison, show_model: bool, revealed: bool) -> tuple[str, str]:
    """The two players' details, in the order they are played (hidden while blind and unjudged)."""
    if comparison.blind and not revealed:
        return HIDDEN, HIDDEN
    first, second = comparison.shown()
    names = ("B", "A") if comparison.swapped else ("A", "B")
    return side_details(first, names[0], show_model), side_details(second, names[1], show_model)


def reveal_line(comparison: Comparison, picked_side: str, show_model: bool) -> str:
    """After the pick: what was pressed and which variant that was."""
    if picked_side == "same":
        said = "You heard no clear difference"
    else:
        variant = comparison.variant_pick(picked_side)
        chosen = comparison.a if variant == "A" else comparison.b
        said = (f"You picked side {picked_side}: variant {variant} "
                f"({html.escape(chosen.variant.label(show_model))})")
    if comparison.blind:
        order = "variant B was played as A and variant A as B" if comparison.swapped else \
            "the sides were not swapped"
        said += f". Blind: {order}"
    return said + ". Verdict saved."


def tally_rows(rows: list[TallyRow], show_model: bool) -> list[list]:
    """The tally table's rows (see :data:`TALLY_HEADERS`)."""
    return [[r.first.label(show_model), r.second.label(show_model), r.first_wins, r.second_wins, r.same, r.total]
            for r in rows]
