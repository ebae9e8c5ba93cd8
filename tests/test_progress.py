"""The driver's progress display, on a terminal and in a pipe."""
import io

from fedscale.cloud import commons
from fedscale.deploy.progress import Progress


def feed(progress):
    progress.on_event({"tag": commons.ROUND_END, "round": 1, "virtual_time": 4.0})
    progress.on_event({"tag": commons.TEST_RESULT, "round": 2, "virtual_time": 8.0, "accuracy": 0.5, "loss": 1.2})
    progress.on_event({"tag": commons.ROUND_END, "round": 2, "virtual_time": 8.0})
    progress.on_event({"tag": commons.EXECUTOR_LOST, "executor": "executor-2", "reason": "gone"})
    progress.on_event({"tag": commons.JOB_END, "round": 2, "virtual_time": 8.0})


def test_terminal_shows_a_live_bar_with_notes_above_it():
    out = io.StringIO()
    feed(Progress(4, out, tty=True))
    text = out.getvalue()
    first = text.index("round 1/4  virtual_time 4.0 s  test_accuracy -")
    second = text.index("round 2/4  virtual_time 8.0 s  test_accuracy 0.5000")
    note = text.index("warning: executor executor-2 lost: gone\n")
    assert first < second < note and "━" in text
    assert text.endswith("\n\x1b[?25h")  # the bar stays, the cursor is shown again below it


def test_the_terminal_bar_estimates_the_wall_time_left_from_the_pace_so_far():
    out = io.StringIO()
    progress = Progress(10, out, tty=True)
    for r, wall in ((1, 100.0), (2, 102.0), (4, 106.0)):
        progress.on_event({"tag": commons.ROUND_END, "round": r, "virtual_time": 4.0 * r, "wall_time": wall})
    text = out.getvalue()
    assert "test_accuracy -  eta" not in text[:text.index("round 2/10")]
    assert text.index("round 2/10  virtual_time 8.0 s  test_accuracy -  eta 16 s") < text.index(
        "round 4/10  virtual_time 16.0 s  test_accuracy -  eta 12 s")


def test_pipe_gets_plain_lines():
    out = io.StringIO()
    feed(Progress(4, out, tty=False))
    assert out.getvalue().splitlines() == [
        "round 1/4  virtual_time 4.0 s  test_accuracy -",
        "test  round 2/4  accuracy 0.5000  loss 1.2000",
        "round 2/4  virtual_time 8.0 s  test_accuracy 0.5000",
        "warning: executor executor-2 lost: gone",
    ]


def test_a_diverged_model_null_loss_is_shown_not_raised():
    out = io.StringIO()
    Progress(4, out, tty=False).on_event({"tag": commons.TEST_RESULT, "round": 3, "virtual_time": 9.0,
                                          "accuracy": 0.1, "loss": None})
    assert out.getvalue() == "test  round 3/4  accuracy 0.1000  loss nan\n"


def test_a_test_that_comes_in_after_its_round_redraws_the_bar():
    out = io.StringIO()
    progress = Progress(4, out, tty=True)
    progress.on_event({"tag": commons.ROUND_END, "round": 4, "virtual_time": 16.0})
    progress.on_event({"tag": commons.TEST_RESULT, "round": 4, "virtual_time": 16.0, "accuracy": 0.7, "loss": 0.9})
    assert "round 4/4  virtual_time 16.0 s  test_accuracy 0.7000" in out.getvalue()
