import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.meetings.emails import (
    MAX_ADDRESSES,
    EmailError,
    ParsedEmails,
    email_key,
    normalize_email,
    parse_emails,
)

PROPERTY = settings(deadline=None, max_examples=150, database=None)

_LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-_'"
_LABEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZäéß "


@st.composite
def addresses(draw) -> tuple[str, str]:
    """(address as typed, its expected normalised form: the domain lower-cased)."""
    # Dots only between characters, and no apostrophe first (it would open a quote).
    parts = draw(st.lists(st.text(_LOCAL_CHARS, min_size=1, max_size=8), min_size=1, max_size=3))
    local = ".".join(parts)
    if local.startswith("'"):
        local = "x" + local
    labels = draw(st.lists(st.text(_LABEL_CHARS, min_size=1, max_size=10), min_size=1, max_size=2))
    tld = draw(st.sampled_from(["org", "COM", "net", "De", "io"]))
    domain = ".".join([*labels, tld])
    return f"{local}@{domain}", f"{local}@{domain.lower()}"


names = st.text(_NAME_CHARS, min_size=1, max_size=20).map(str.strip).filter(bool)

FORMS = {
    "bare": lambda addr, name: addr,
    "named": lambda addr, name: f"{name} <{addr}>",
    "quoted name": lambda addr, name: f'"{name}, Jr; {name}" <{addr}>',
    "angle": lambda addr, name: f"<{addr}>",
    "mailto": lambda addr, name: f"mailto:{addr}",
    "named mailto": lambda addr, name: f"{name} <mailto:{addr}>",
    "single quotes": lambda addr, name: f"'{addr}'",
    "double quotes": lambda addr, name: f'"{addr}"',
    "trailing dot": lambda addr, name: f"{addr}.",
    "comment": lambda addr, name: f"{addr} ({name})",
    "address as name": lambda addr, name: f"'{addr}' <{addr}>",
    "address as name, other case": lambda addr, name: f'"{addr.upper()}" <{addr}>',
}
separators = st.sampled_from([",", ", ", ";", "; ", "\n", "\r\n", " ", "\t", ",\n", " ;  "])


@st.composite
def pasted_lists(draw) -> tuple[str, list[str]]:
    entries = draw(st.lists(st.tuples(addresses(), names, st.sampled_from(sorted(FORMS))),
                            min_size=1, max_size=25))
    pieces = [FORMS[form](typed, name) for (typed, _), name, form in entries]
    text = pieces[0]
    for piece in pieces[1:]:
        text += draw(separators) + piece
    text = draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", ",", "\n"]))
    expected, seen = [], set()
    for (_, normalised), _, _ in entries:
        if normalised.casefold() not in seen:
            seen.add(normalised.casefold())
            expected.append(normalised)
    return text, expected


@PROPERTY
@given(case=pasted_lists())
def test_any_pasted_list_of_valid_addresses_parses_to_the_same_normalised_set(case):
    text, expected = case
    parsed = parse_emails(text)
    assert parsed.invalid == ()
    assert list(parsed.valid) == expected


garbage_words = st.text("abcdefghijklmnopqrstuvwxyz0123456789!#$%&*+=?^_`{|}~", min_size=1,
                        max_size=12)
garbage_addresses = st.sampled_from(
    ["alice@", "@example.org", "a@@example.org", "a..b@example.org", "a@localhost",
     "a@example", "a@x.test", "a@-bad-.org", ".a@example.org"]
)
hard_separators = st.sampled_from([",", ";", "\n", ", ", " ; "])


@PROPERTY
@given(
    good=st.lists(addresses(), min_size=0, max_size=10),
    bad=st.lists(st.one_of(garbage_words, garbage_addresses), min_size=1, max_size=10),
    order=st.randoms(use_true_random=False),
    seps=st.lists(hard_separators, min_size=20, max_size=20),
)
def test_garbage_is_named_in_invalid_and_does_not_disturb_the_rest(good, bad, order, seps):
    pieces = [("good", typed) for typed, _ in good] + [("bad", word) for word in bad]
    order.shuffle(pieces)
    text = "".join(piece + seps[k % len(seps)] for k, (_, piece) in enumerate(pieces))
    parsed = parse_emails(text)
    expected, seen = [], set()
    for kind, piece in pieces:
        normalised = dict(good)[piece] if kind == "good" else None
        if normalised and normalised.casefold() not in seen:
            seen.add(normalised.casefold())
            expected.append(normalised)
    assert list(parsed.valid) == expected
    reported = [text for text, _ in parsed.invalid]
    # Each piece of garbage stood between hard separators, so it is reported as pasted.
    assert sorted(reported) == sorted(word.strip() for word in bad)
    assert all(reason for _, reason in parsed.invalid)


def test_common_forms_from_mail_programs():
    text = (
        'Alice Example <Alice@Example.ORG>, "Smith, Bob" <bob@example.org>; '
        "mailto:carol@example.org?subject=hi\n"
        "'dave@example.org' <dave@example.org>  eve@example.org. frank@example.org (Frank F)\n"
        "'Jones, Gina' <gina@example.org>; <MAILTO:hal@example.org>, o'brien@example.org,"
    )
    assert parse_emails(text) == ParsedEmails(
        valid=(
            "Alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org",
            "eve@example.org", "frank@example.org", "gina@example.org", "hal@example.org",
            "o'brien@example.org",
        ),
        invalid=(),
    )


def test_duplicates_differing_in_case_keep_the_first_form():
    parsed = parse_emails("Alice@Example.org, ALICE@example.ORG, alice@example.org")
    assert parsed.valid == ("Alice@example.org",)
    assert email_key("ALICE@example.org") == email_key("alice@example.org")


def test_words_without_an_address_are_reported_with_a_reason():
    parsed = parse_emails("John Smith, ann@example.org stray ben@example.org, bad@, x@y.test")
    assert parsed.valid == ("ann@example.org", "ben@example.org")
    texts = dict(parsed.invalid)
    assert set(texts) == {"John Smith", "stray", "bad@", "x@y.test"}
    assert texts["John Smith"] == "No email address here."
    assert "after the @-sign" in texts["bad@"]
    assert "special-use or reserved" in texts["x@y.test"]


def test_empty_and_blank_input_has_nothing():
    assert parse_emails("") == ParsedEmails((), ())
    assert parse_emails(" ,;\n\t\u200b ") == ParsedEmails((), ())


def test_more_than_the_limit_is_cut_with_one_entry_saying_so():
    text = "\n".join(f"user{k}@example.org" for k in range(MAX_ADDRESSES + 50))
    parsed = parse_emails(text)
    assert len(parsed.valid) == MAX_ADDRESSES
    assert parsed.valid[-1] == f"user{MAX_ADDRESSES - 1}@example.org"
    assert len(parsed.invalid) == 1
    pasted, reason = parsed.invalid[0]
    assert pasted == f"user{MAX_ADDRESSES}@example.org"
    assert f"only the first {MAX_ADDRESSES}" in reason


def test_duplicates_do_not_count_towards_the_limit():
    text = "\n".join(["same@example.org"] * (MAX_ADDRESSES + 10) + ["other@example.org"])
    assert parse_emails(text).valid == ("same@example.org", "other@example.org")


def test_single_address_is_normalised_or_refused_with_the_reason():
    assert normalize_email("  Bob@Example.ORG ") == "Bob@example.org"
    assert normalize_email("jürgen@bücher.de") == "jürgen@bücher.de"
    with pytest.raises(EmailError, match="Enter an email address"):
        normalize_email("   ")
    with pytest.raises(EmailError, match="@-sign"):
        normalize_email("bob.example.org")
    with pytest.raises(EmailError, match="special-use or reserved"):
        normalize_email("bob@host.localhost")


def test_an_address_quoted_before_a_different_one_is_a_second_invitee():
    text = '"old@example.org" <new@example.org>, "new@example.org" <New@Example.org>'
    parsed = parse_emails(text)
    assert parsed == ParsedEmails(valid=("old@example.org", "new@example.org"), invalid=())


@pytest.mark.parametrize("opener", ['"', "'", "(", "<"])
def test_unclosed_quotes_and_brackets_cost_linear_work_on_a_long_line(opener):
    # Each unclosed opener used to be searched for its closing mark to the end of the line, so
    # a long pasted line of them took quadratic time. Counted in characters examined, not time:
    # twice the line must cost about twice the reading, not four times.
    def line(repeats: int) -> str:
        return (opener + "x ") * repeats + "last@example.org"

    assert _count_examined(line(4_000)) < 2.5 * _count_examined(line(2_000))
    assert parse_emails(line(2_000)).valid == ("last@example.org",)


def _count_examined(text: str) -> int:
    """How many characters the tokenizer reads, through a str whose indexing is counted."""
    from lib.meetings import emails

    class Counted(str):
        reads = 0

        def __getitem__(self, key):
            Counted.reads += 1 if isinstance(key, int) else max(len(str.__getitem__(self, key)), 1)
            return str.__getitem__(self, key)

        def find(self, sub, start=0, end=None):
            end = len(self) if end is None else end
            found = str.find(self, sub, start, end)
            Counted.reads += (found if found >= 0 else end) - start
            return found

    Counted.reads = 0
    list(emails._entries(Counted(text)))
    return Counted.reads
