"""``python -m pikflow``: the ``pikflow`` command (:func:`pikflow.cli.main`)."""

from .cli import main

raise SystemExit(main())
