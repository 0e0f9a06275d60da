"""`preflab`, the command-line client: a study's import, export, training runs and round loop over the REST API.

It never imports Django, so it runs anywhere the API can be reached: `pip install .` on a laptop, then
`preflab --url https://preflab.example --token KEY studies`.
"""

from annotate.cli.commands import main

__all__ = ["main"]
