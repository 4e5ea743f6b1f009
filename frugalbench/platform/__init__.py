"""The submission platform: a content-addressed submission store, safe archive unpacking, a queue in
the results database and a local server that evaluates queued entries (issue 17).

Nothing here imports torch at import time; validation and evaluation import it when they run.
"""
