"""User administration from the command line.

    python -m lib.auth create-user NAME [--role ROLE] [--password-stdin]
        the password is asked for twice on the terminal, or read from standard input
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
from typing import TypeVar

from .. import services
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
    first = sub.add_parser("first-admin", help="create an admin with a random password when there is no user")
    first.add_argument("username", nargs="?", default="admin")
    args = parser.parse_args(argv)
    if args.command == "first-admin":
        return first_admin(args.username)

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


def _with_users(action: Callable[[UserService], T]) -> T | None:
    """Run `action` on the user service of freshly started services; on an error print one
    line to stderr and return None."""
    try:
        svc = services.start()
    except Exception as exc:  # config or database: one clear line
        print(f"error: {exc}", file=sys.stderr)
        return None
    try:
        return action(svc.users)
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
