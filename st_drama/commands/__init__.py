"""Command-line commands that do not belong to one subpackage (see ``st_drama.cli``)."""
