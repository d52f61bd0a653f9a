"""The ``jiritsu`` command line: thin Typer commands over the :mod:`jiritsu` library."""
