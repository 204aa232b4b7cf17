"""User administration from the command line.

    python -m lib.auth create-user NAME [--role ROLE] [--password-stdin]
        the password is asked for twice on the terminal, or read from standard input
    python -m lib.auth create-api-key NAME [--role ROLE] [--owner USER] [--expires-days N]
        a REST API key acting as USER (default: the first admin) with ROLE; the key is printed
        once and stored only as a hash
    python -m lib.auth first-admin [NAME]
        only when there is no user at all: create an admin with a random password and print it
        once (what `make run` does on a fresh install; nothing is ever a default password)
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from .. import services
from ..models import utcnow
from .apikeys import CreatedKey
from .policy import ActionError, Actor
from .roles import ROLES
from .users import UserService

T = TypeVar("T")
CLI = Actor.system("command line")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.auth")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-user", help="create a user")
    create.add_argument("username")
    create.add_argument("--role", choices=ROLES, default="admin")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    key = sub.add_parser("create-api-key", help="create a REST API key (printed once)")
    key.add_argument("name")
    key.add_argument("--role", choices=ROLES, default="operator")
    key.add_argument("--owner", help="the user the key acts as (default: the first admin)")
    key.add_argument("--expires-days", type=float, help="days until the key stops working (default: never)")
    first = sub.add_parser("first-admin", help="create an admin with a random password when there is no user")
    first.add_argument("username", nargs="?", default="admin")
    args = parser.parse_args(argv)
    if args.command == "first-admin":
        return first_admin(args.username)
    if args.command == "create-api-key":
        return create_api_key(args.name, args.role, args.owner, args.expires_days)

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 1
    user = _with_users(lambda users: users.create(CLI, args.username, password, args.role))
    if user is None:
        return 1
    print(f"created {user.role} '{user.username}'")
    return 0


def create_api_key(name: str, role: str, owner: str | None, expires_days: float | None) -> int:
    expires = utcnow() + timedelta(days=expires_days) if expires_days else None

    def create(svc: services.Services) -> CreatedKey:
        admins = sorted((u for u in svc.users.list() if u.role == "admin" and not u.disabled), key=lambda u: u.created_at)
        who = owner or (admins[0].username if admins else None)
        if who is None:
            raise ActionError("there is no admin to own the key: create one first (python -m lib.auth create-user NAME)")
        return svc.api_keys.create(CLI, name, role, owner=who, expires_at=expires)

    created = _with_services(create)
    if created is None:
        return 1
    until = f", expires {created.key.expires_at:%Y-%m-%d %H:%M} UTC" if created.key.expires_at else ""
    print(f"created API key '{created.key.name}' ({created.key.prefix}, role {created.key.role}, acts as {created.key.owner}{until})")
    print(f"key (shown once, stored only as a hash): {created.secret}")
    return 0


def _with_users(action: Callable[[UserService], T]) -> T | None:
    return _with_services(lambda svc: action(svc.users))


def _with_services(action: Callable[[services.Services], T]) -> T | None:
    """Run `action` on freshly started services; on an error print one line to stderr and
    return None."""
    try:
        svc = services.start()
    except Exception as exc:  # config or database: one clear line
        print(f"error: {exc}", file=sys.stderr)
        return None
    try:
        return action(svc)
    except ActionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    finally:
        services.stop()


def first_admin(username: str) -> int:
    password = secrets.token_urlsafe(12)
    created = _with_users(lambda users: None if users.count() else users.create(CLI, username, password, "admin"))
    if created is not None:
        print(f"first admin created: user '{username}', password '{password}' (shown once; change it on the Account page)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
