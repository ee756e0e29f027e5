"""The A/B tab: two variants (a model and its settings) of one request side by side, blind verdicts,
their tally and CSV exports (`/compare`, `/compare_verdict`, `/compare_tally`)."""
