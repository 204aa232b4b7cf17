"""`python -m bench` (make bench): run every benchmark in turn. The history query benchmark
generates 90 days of history first (about 6 minutes on two cores)."""

from . import api_throughput, history_ingest, history_queries, join_tokens, meeting_labels, scheduler_tick, snapshot

if __name__ == "__main__":
    snapshot.main([])
    print()
    history_ingest.main([])
    print()
    scheduler_tick.main([])
    print()
    join_tokens.main([])
    print()
    meeting_labels.main([])
    print()
    api_throughput.main([])
    print()
    history_queries.main([])
