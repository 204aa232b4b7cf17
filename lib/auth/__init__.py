"""Who may use the dashboard: users and their passwords, roles, sign-in sessions, the guards
pages and routes call, and the audit trail. Security code lives here, in one place."""
