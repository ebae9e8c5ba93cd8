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


def test_terminal_redraws_one_line_with_a_bar():
    out = io.StringIO()
    feed(Progress(4, out, tty=True))
    text = out.getvalue()
    assert text.startswith("\r[######------------------] round 1/4  virtual_time 4.0 s  test_accuracy -")
    assert "\r[############------------] round 2/4  virtual_time 8.0 s  test_accuracy 0.5000" in text
    assert "\nwarning: executor executor-2 lost: gone\n" in text
    assert text.endswith("\n")


def test_the_terminal_bar_estimates_the_wall_time_left_from_the_pace_so_far():
    out = io.StringIO()
    progress = Progress(10, out, tty=True)
    for r, wall in ((1, 100.0), (2, 102.0), (4, 106.0)):
        progress.on_event({"tag": commons.ROUND_END, "round": r, "virtual_time": 4.0 * r, "wall_time": wall})
    lines = out.getvalue().split("\r")[1:]
    assert "eta" not in lines[0]
    assert lines[1].endswith("  eta 16 s\x1b[K") and lines[2].endswith("  eta 12 s\x1b[K")


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
