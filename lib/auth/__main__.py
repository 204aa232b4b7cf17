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

from .. import services
from .roles import ROLES
from .users import UserError


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
    try:
        svc = services.start()
    except Exception as exc:  # config or database: one clear line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        user = svc.users.create(args.username, password, args.role, actor="command line")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        services.stop()
    print(f"created {user.role} '{user.username}'")
    return 0


def first_admin(username: str) -> int:
    try:
        svc = services.start()
    except Exception as exc:  # config or database: one clear line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if svc.users.count() > 0:
            return 0
        password = secrets.token_urlsafe(12)
        svc.users.create(username, password, "admin", actor="command line")
    finally:
        services.stop()
    print(f"first admin created: user '{username}', password '{password}' (shown once; change it on the Account page)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
