"""Client-selection policies from published systems, re-implemented on numpy arrays."""
