"""Search controllers: ask/tell cores (no Ray) and a Ray Tune Searcher adapter (its own module)."""
