#!/usr/bin/env bash
# Regenerate the bundled reference voices (needs: apt-get install -y espeak-ng sox).
# The WAVs are committed, so neither the app nor the tests run this.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us+m3 -s 150 -w "$tmp/a.wav" "Some call me nature, others call me mother nature."
espeak-ng -v en-gb+f3 -s 145 -w "$tmp/b.wav" "The quick brown fox jumps over the lazy dog by the river."
sox -D "$tmp/a.wav" -r 24000 -b 16 -c 1 voice_male_us.wav norm -1
sox -D "$tmp/b.wav" -r 24000 -b 16 -c 1 voice_female_gb.wav norm -1
