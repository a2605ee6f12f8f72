"""Controllers: one module each, a small reconcile of one object from informer caches.

Every controller talks to the API through ``k3py.client`` (the in-process transport in
the server) and reads from shared informers; none imports ``server.api`` or
``server.datastore``.  ``manager.py`` builds them, runs them behind leader election, and
stops them cleanly.  ``base.py`` holds the pieces they share.
"""
