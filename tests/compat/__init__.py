"""Tests of the drop-in compatibility shims (``streamlog.compat``)."""
