"""`python -m bench` (make bench): run every benchmark in turn."""

from . import history_ingest, snapshot

if __name__ == "__main__":
    snapshot.main([])
    print()
    history_ingest.main([])
