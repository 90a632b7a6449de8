"""Offline speech synthesisers that speak the corpus: espeak-ng (always) and SVOX Pico (the `pico` extra)."""
