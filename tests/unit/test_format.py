from lib.config import mask_secret
from lib.ui.format import clip, duration, md


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
