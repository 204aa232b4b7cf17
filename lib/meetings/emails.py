"""Invitee email addresses: reading a pasted list in whatever form a mail program copies it, and
normalising one address typed at the join form.

Addresses are validated without DNS (`check_deliverability=False`: the dashboard may run with no
resolver, and a domain that resolves says nothing about the mailbox) and kept in
email-validator's normalised form, which lower-cases the domain but keeps the local part's case
(mail servers may treat it as significant). Two addresses are the same invitee when their
normalised forms match case-insensitively (`email_key`).
"""
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

MAX_ADDRESSES = 1000

# Between entries. Commas and semicolons inside a quoted name or <...> do not count.
_HARD_SEPARATORS = frozenset(",;\n\r，；")
_INVISIBLE = frozenset("\u200b\ufeff")
_WORD_STOPS = _HARD_SEPARATORS | frozenset('"<(')
# How far a quote, <...> or (...) may run. Nothing longer is a name or an address, and searching
# further for each unclosed mark would take quadratic time on a long pasted line.
_REACH = 320


class EmailError(ValueError):
    """An address that is not valid; the message says why in plain words."""


@dataclass(frozen=True)
class ParsedEmails:
    """`valid`: normalised, unique, in input order. `invalid`: (text as pasted, reason)."""

    valid: tuple[str, ...]
    invalid: tuple[tuple[str, str], ...]


def normalize_email(addr: str) -> str:
    """The normalised form of one address; EmailError saying why it is not valid."""
    text = addr.strip() if isinstance(addr, str) else ""
    if not text:
        raise EmailError("Enter an email address.")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise EmailError(str(error)) from None


def email_key(normalized: str) -> str:
    """What two normalised addresses share when they name the same invitee."""
    return normalized.casefold()


def parse_emails(text: str) -> ParsedEmails:
    """Every address in a pasted list, and every piece of the list that is not one.

    Accepted: addresses separated by commas, semicolons, spaces or newlines; `Name <addr>`;
    `"Last, First" <addr>`; `addr (Name)`; `mailto:` prefixes; addresses in quotes or angle
    brackets; a trailing dot or comma. Words that are neither an address nor the name of the
    address after them are reported, so nothing pasted is dropped in silence. At most
    `MAX_ADDRESSES` addresses are taken; the rest is reported as one entry.
    """
    valid: list[str] = []
    invalid: list[tuple[str, str]] = []
    seen: set[str] = set()
    for kind, raw, candidate in _entries(text):
        if kind == "invalid":
            invalid.append((raw, candidate))
        else:
            try:
                normalized = validate_email(candidate, check_deliverability=False).normalized
            except EmailNotValidError as error:
                invalid.append((raw, str(error)))
            else:
                key = email_key(normalized)
                if key in seen:
                    continue
                if len(valid) == MAX_ADDRESSES:
                    invalid.append(
                        (
                            raw,
                            f"More than {MAX_ADDRESSES} addresses: only the first "
                            f"{MAX_ADDRESSES} were taken; this one and those after it were not.",
                        )
                    )
                    break
                seen.add(key)
                valid.append(normalized)
        if len(invalid) == MAX_ADDRESSES:
            reason = "Too many entries that are not addresses: the rest were not read."
            invalid.append(("…", reason))
            break
    return ParsedEmails(valid=tuple(valid), invalid=tuple(invalid))


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "quoted", "angle", "comment"
    start: int
    end: int
    content: str


def _entries(text: str):
    """("address", raw, candidate) and ("invalid", raw, reason) in input order."""
    for segment in _segments(text):
        yield from _segment_entries(text, segment)


def _segments(text: str) -> list[list[_Token]]:
    """The tokens of each run between hard separators (commas, semicolons, newlines)."""
    segments: list[list[_Token]] = [[]]
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in _HARD_SEPARATORS:
            segments.append([])
            i += 1
        elif char.isspace() or char in _INVISIBLE:
            i += 1
        else:
            token = _quoted(text, i) or _angle(text, i) or _comment(text, i) or _word(text, i)
            segments[-1].append(token)
            i = token.end
    return [segment for segment in segments if segment]


def _quoted(text: str, i: int) -> _Token | None:
    """A double-quoted string on one line, or a single-quoted one closed before a space."""
    stop = min(len(text), i + _REACH)
    if text[i] == '"':
        j = i + 1
        chars = []
        while j < stop and text[j] not in '"\n\r':
            if text[j] == "\\" and j + 1 < stop and text[j + 1] not in "\n\r":
                j += 1
            chars.append(text[j])
            j += 1
        if j < stop and text[j] == '"':
            return _Token("quoted", i, j + 1, "".join(chars))
        return None
    if text[i] == "'":
        # An apostrophe inside a word (o'brien@...) never opens a quote: only one at a word's
        # start does, and only if a quote closes it at the end of a word.
        j = i + 1
        while j < stop and text[j] not in "\n\r":
            after = text[j + 1] if j + 1 < len(text) else " "
            if text[j] == "'" and (after.isspace() or after in _HARD_SEPARATORS or after == "<"):
                return _Token("quoted", i, j + 1, text[i + 1 : j])
            j += 1
    return None


def _angle(text: str, i: int) -> _Token | None:
    if text[i] != "<":
        return None
    j, stop = i + 1, min(len(text), i + _REACH)
    while j < stop and text[j] not in ">\n\r<":
        j += 1
    if j < stop and text[j] == ">":
        return _Token("angle", i, j + 1, text[i + 1 : j])
    return None


def _comment(text: str, i: int) -> _Token | None:
    if text[i] != "(":
        return None
    j, stop = i + 1, min(len(text), i + _REACH)
    while j < stop and text[j] not in ")\n\r":
        j += 1
    if j < stop and text[j] == ")":
        return _Token("comment", i, j + 1, text[i + 1 : j])
    return None


def _word(text: str, i: int) -> _Token:
    j = i + 1
    while j < len(text):
        char = text[j]
        if char.isspace() or char in _INVISIBLE or char in _WORD_STOPS:
            break
        j += 1
    return _Token("word", i, j, text[i:j])


def _segment_entries(text: str, tokens: list[_Token]):
    """Split one segment at its addresses: a <...> takes whatever precedes it as its name; a
    bare address takes a quoted name or (comment) before it; a quoted name or (comment) after
    the last address is its comment. Plain words left over are reported."""
    anchors = [k for k in range(len(tokens)) if _is_address(tokens, k)]
    if not anchors:
        yield ("invalid", _raw(text, tokens), "No email address here.")
        return
    previous = -1
    for anchor in anchors:
        token = tokens[anchor]
        before = tokens[previous + 1 : anchor]
        if token.kind == "angle":
            first = before[0] if before else token
        else:
            # Plain words before a bare address are not its name: nothing says where the
            # name would start, so they are reported rather than swallowed.
            named_from = len(before)
            while named_from > 0 and before[named_from - 1].kind in ("quoted", "comment"):
                named_from -= 1
            yield from _stray(text, before[:named_from])
            first = before[named_from] if named_from < len(before) else token
        last = token
        if anchor == anchors[-1]:
            after = tokens[anchor + 1 :]
            trailing = 0
            while trailing < len(after) and after[trailing].kind in ("quoted", "comment"):
                trailing += 1
            if trailing:
                last = after[trailing - 1]
            extra = after[trailing:]
        else:
            extra = []
        yield ("address", text[first.start : last.end].strip(), _clean(token.content))
        yield from _stray(text, extra)
        previous = anchor


def _stray(text: str, tokens: list[_Token]):
    if tokens:
        yield ("invalid", _raw(text, tokens), "Not an email address.")


def _is_address(tokens: list[_Token], k: int) -> bool:
    token = tokens[k]
    if token.kind in ("quoted", "comment"):
        if "@" not in token.content:
            return False
        # Mail programs write 'a@x.org' <a@x.org>: the quoted copy is only its name. A
        # different address in quotes is one more invitee, never silently dropped.
        following = tokens[k + 1] if k + 1 < len(tokens) else None
        if following is None or following.kind != "angle":
            return True
        return email_key(_clean(token.content)) != email_key(_clean(following.content))
    return token.kind == "angle" or (token.kind == "word" and "@" in token.content)


def _raw(text: str, tokens: list[_Token]) -> str:
    return text[tokens[0].start : tokens[-1].end].strip()


def _clean(candidate: str) -> str:
    """The address inside what was pasted: no mailto:, no wrapping quotes, brackets or final dot."""
    address = candidate.strip()
    if address[:7].casefold() == "mailto:":
        address = address[7:].split("?", 1)[0]
    address = address.strip().strip("<>()[]\"'").strip()
    if address[:7].casefold() == "mailto:":
        address = address[7:].split("?", 1)[0].strip()
    return address.rstrip(".,")
