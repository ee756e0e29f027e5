"""The voice-clone tab: its handlers (``CloneHandlers``: Generate, ``/synthesize``, the engine
panel's ``/status`` ``/load`` ``/unload``) and its layout (``tab``)."""
