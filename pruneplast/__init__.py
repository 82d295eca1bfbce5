"""pruneplast: depression as excessive synaptic pruning in a small neural network."""

import sys

__version__ = "0.1.0"

# Start-up time of every process that reads or runs a notebook (a chapter's kernel, `pruneplast
# run`, each page of a book build). nbformat imports jsonschema, whose format checker imports the
# optional package rfc3987_syntax when it is installed (Jupyter's server pulls it in), and that
# package compiles 38 parsers at import: 2-4 s of CPU per process, about a third of a small
# chapter's run. It serves only the "iri" and "iri-reference" formats of JSON Schema, which no
# schema read here uses (nbformat validates notebooks without format checks). Marking it absent
# before anything imports jsonschema makes jsonschema skip those two checkers; a process that
# imported it already keeps it (tests/test_startup.py).
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
