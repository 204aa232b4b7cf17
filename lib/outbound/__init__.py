"""Outgoing webhooks: events the dashboard POSTs, signed, to the receivers admins register.

- `events`: the event types and their payloads (pure).
- `signing`: the signature header and `verify` (pure).
- `retry`: the back-off schedule and when a receiver is paused (pure).
- `outbox`: what emitters call: rows inserted into the caller's transaction, never network I/O.
- `sender`: the one module that sends HTTP to receivers.
- `deliverer`: the background thread that claims due deliveries and sends them.
- `service`: `WebhookService`, the admins' actions (capability `manage_webhooks`).
"""
