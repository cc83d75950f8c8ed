"""audit-client's subcommands, one module each: ``audit`` (the default), ``report`` (report, get, merge),
``compare`` (compare, diff), ``layers``, ``engine`` (build-engine, inspect); ``common`` is their shared
ending. Each builds its parser from the argument groups of `shiftaudit.client.args` and runs on typed values."""
