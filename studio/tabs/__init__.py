"""The page's tabs, one module each: build_*() lays a tab out, wire_*() connects its events."""
