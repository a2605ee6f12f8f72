"""Pure Kubernetes API machinery: names, selectors, quantities, patches, apply.

Nothing here knows about HTTP, SQL or the server; everything is a function of its
arguments (``now`` is passed in where time matters).
"""
