"""``sdrt bench``: per-stage timings of a bundle's pipeline, beside another library's (a ``Reference``)."""
