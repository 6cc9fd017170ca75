from bot.logs import MemoryLog
from bot.masking import Masker


def test_masks_values_and_each_line_of_multiline_values() -> None:
    key = "-----BEGIN KEY-----\nabcdefgh12345\n-----END KEY-----"
    m = Masker(["hunter22", key, "abc"])
    assert m.mask("pw=hunter22!") == "pw=****!"
    assert "abcdefgh12345" not in m.mask("line: abcdefgh12345")
    # Values under four characters would mangle ordinary text.
    assert m.mask("abc") == "abc"


def test_longer_secret_masked_whole() -> None:
    m = Masker(["secret", "secret-and-more"])
    assert m.mask("x secret-and-more y") == "x **** y"


def test_log_masks_before_storing() -> None:
    log = MemoryLog(Masker(["tok-XYZ-123"]))
    log.info("token tok-XYZ-123 used")
    log.output("echo tok-XYZ-123\n")
    assert "tok-XYZ-123" not in log.text and log.text.count("****") == 2
