"""The installed command."""
import shutil
import subprocess


def test_console_script_is_the_driver():
    exe = shutil.which("fedscale")
    assert exe, "the fedscale console script is not installed (pip install -e .)"
    done = subprocess.run([exe, "keys"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "learning_rate" in done.stdout
