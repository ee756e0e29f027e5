"""Knowing what was said: transcription, error rates, the per-chunk check, captions, loudness.

One module per job, none of them tied to the request path (the engine, the page and the API call
them): ``transcriber`` (Whisper on the shared device), ``scoring`` (WER/CER), ``check`` (retries and
the request's ``QualityReport``), ``captions`` (SRT/VTT), ``loudness`` (BS.1770 target with a
true-peak ceiling) and ``tiny_whisper`` (random Whisper directories for tests and benches).
"""
