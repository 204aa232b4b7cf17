from livekit.protocol import models as models_pb

from lib.config import mask_secret
from lib.livekit.records import participant_from_proto
from lib.ui.format import chart_label, clip, duration, md, visible
from lib.ui.tables import participants_frame, tracks_frame


def test_markdown_and_html_in_names_is_escaped():
    assert md("<script>alert(1)</script>") == "\\<script\\>alert\\(1\\)\\</script\\>"
    assert md("**bold** [x](javascript:alert(1))") == "\\*\\*bold\\*\\* \\[x\\]\\(javascript\\:alert\\(1\\)\\)"


def test_long_values_are_clipped_for_cells():
    assert len(clip("x" * 10_000)) == 200 and clip("x" * 10_000).endswith("…")
    assert clip("short") == "short"


def test_durations_read_naturally():
    assert [duration(s) for s in (5, 65, 3700, 200_000)] == ["5s", "1m 05s", "1h 01m", "2d 7h"]


def test_secrets_are_masked_to_the_last_four_characters():
    assert mask_secret("abcdefghijklmnopqrstuvwxyz") == "••••••••wxyz"
    assert mask_secret("short") == "••••••••"


# ----- invisible and bidi-control characters --------------------------------------------------


def test_ordinary_names_in_any_script_are_left_alone():
    for name in ("alice", "Zoë", "e\u0301", "مرحبا", "שלום", "名前", "😀", "a b", "tab-less", "x\u00a0y"):
        assert visible(name) == name


def test_bidi_controls_and_zero_width_characters_are_shown_as_markers():
    assert visible("invoice\u202etxt.exe") == "invoice⟨U+202E⟩txt.exe"
    for ch in ("\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad",
               "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\U000e0041"):  # fmt: skip
        assert visible(f"a{ch}b") == f"a⟨U+{ord(ch):04X}⟩b"


def test_control_characters_and_line_separators_are_shown_as_markers():
    assert visible("a\x00b\x1bc\x7fd\x85e\x9ff") == "a⟨U+0000⟩b⟨U+001B⟩c⟨U+007F⟩d⟨U+0085⟩e⟨U+009F⟩f"
    assert visible("two\nlines\r\tx") == "two⟨U+000A⟩lines⟨U+000D⟩⟨U+0009⟩x"
    assert visible("a\u2028b\u2029c") == "a⟨U+2028⟩b⟨U+2029⟩c"


def test_blank_looking_fillers_are_shown_as_markers():
    assert visible("\u3164") == "⟨U+3164⟩" and visible("a\u115fb\u034f") == "a⟨U+115F⟩b⟨U+034F⟩"


def test_markdown_shows_the_markers_as_text():
    assert md("bob\u202e") == "bob⟨U\\+202E⟩"


def test_chart_labels_escape_exactly_what_plotly_reads_as_markup():
    # plotly.js reads <b>-like tags and &...; entities (only amp, lt, gt and a few others):
    # a quote or an apostrophe is plain text there and must stay one.
    assert chart_label('o"neil <b>x</b> &amp; it\'s\u202e') == "o\"neil &lt;b&gt;x&lt;/b&gt; &amp;amp; it's⟨U+202E⟩"
    assert chart_label("a&lt;b") == "a&amp;lt;b"


def test_live_tables_show_hidden_characters_in_names():
    info = models_pb.ParticipantInfo(sid="PA_1", identity="ad\u202emin", name="Zero\u200bWidth",
                                     tracks=[models_pb.TrackInfo(sid="TR_1", name="mic\u2066", type=models_pb.AUDIO)])  # fmt: skip
    p = participant_from_proto("s1", "room\u200d", info)
    row = participants_frame([p]).iloc[0]
    assert (row["identity"], row["name"], row["room"]) == ("ad⟨U+202E⟩min", "Zero⟨U+200B⟩Width", "room⟨U+200D⟩")
    track = tracks_frame([p]).iloc[0]
    assert (track["participant"], track["name"]) == ("ad⟨U+202E⟩min", "mic⟨U+2066⟩")
