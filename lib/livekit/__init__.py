"""Everything that talks to LiveKit: the gateway (Server API clients and snapshots), typed
snapshot records, error categories and the local dev server launcher."""
