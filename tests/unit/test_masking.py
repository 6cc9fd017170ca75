from bot.logs import MemoryLog
from bot.masking import Masker, MaskStream


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


def test_pending_length_is_the_longest_secret_prefix_ending_the_last_line() -> None:
    m = Masker(["hunter22", "huntsman-99"])
    assert m.pending_length("password: hunt") == 4
    assert m.pending_length("password: hunter2") == 7
    assert m.pending_length("password: hunter22") == 0  # whole: mask() handles it
    assert m.pending_length("hunt\n") == 0  # a line break ends any secret in progress
    assert m.pending_length("nothing here") == 0
    assert Masker().pending_length("hunt") == 0


def test_stream_masks_a_secret_split_across_chunks() -> None:
    stream = MaskStream(Masker(["hunter22"]))
    assert stream.feed("pw: hun") == "pw: "
    assert stream.feed("ter") == ""
    assert stream.feed("22 ok\n") == "**** ok\n"
    assert stream.held == ""


def test_stream_masks_a_whole_secret_that_a_shorter_secret_prefix_ends() -> None:
    # "abcab" ends with "ab", the start of "abzz9": the whole secret is masked first.
    stream = MaskStream(Masker(["abcab", "abzz9"]))
    assert stream.feed("x abcab") == "x ****"


def test_stream_releases_a_held_fragment_masked() -> None:
    stream = MaskStream(Masker(["hunter22"]))
    assert stream.feed("pw: hunte") == "pw: "
    assert stream.release() == "****"  # the start of a secret is not shown
    stream.feed("pw: hun")
    assert stream.release() == "hun"  # too short to mean anything, like a short secret
    assert stream.release() == ""


def test_log_holds_a_split_secret_and_bot_lines_release_it_in_order() -> None:
    log = MemoryLog(Masker(["tok-XYZ-123"]))
    log.output("token tok-X")
    assert log.chunks == ["token "]
    log.output("YZ-123 used\n")
    log.output("again tok-XY")
    log.info("step passed")
    assert "".join(log.chunks) == "token **** used\nagain ****[wercker-bot] step passed\n"


def test_log_close_releases_what_it_holds() -> None:
    log = MemoryLog(Masker(["tok-XYZ-123"]))
    log.output("x to")
    assert log.text == "x to"  # the view shows it as it would be released
    log.close()
    assert log.chunks == ["x ", "to"]
