"""History imports: vendor APIs and export files onto items, through the API's own upsert path.

`sources.py` names the vendors; each vendor module turns its API's pages into item dicts (through
the same `connectors` mappers the webhooks use where the shapes match); `run.py` writes each page
and its resume cursor in one transaction; `files.py` reads export files.
"""
