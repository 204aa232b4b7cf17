"""History: the DuckDB store, the collector that samples every server, the events from webhooks
and snapshot differences, and the sessions reconstructed from them."""
