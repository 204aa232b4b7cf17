"""`python -m bench` (make bench): run every benchmark in turn."""

from . import snapshot

if __name__ == "__main__":
    snapshot.main()
