"""A real OpenSSH server for tests: Debian's sshd on 127.0.0.1 (or in a network namespace) at a
free port, with a temporary host key, client key, authorized_keys and known_hosts."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def available() -> bool:
    return os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SshServer:
    address: str
    port: int
    client_key: Path
    known_hosts: Path
    process: subprocess.Popen

    @property
    def auth(self) -> dict[str, object]:
        return {"ssh_user": "root" if os.geteuid() == 0 else os.environ.get("USER", ""),
                "ssh_private_key": str(self.client_key), "ssh_port": self.port,
                "ssh_known_hosts": str(self.known_hosts)}


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@contextmanager
def sshd(folder: Path, address: str = "127.0.0.1", netns: str = "") -> Iterator[SshServer]:
    """An sshd answering on ``address`` (inside network namespace ``netns`` if given), accepting
    ``client_key`` for the current user; stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    host_key, client_key = folder / "host_key", folder / "client_key"
    keygen(host_key)
    keygen(client_key)
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    port = free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"ListenAddress {address}:{port}", f"HostKey {host_key}", f"AuthorizedKeysFile {folder}/authorized_keys",
        f"PidFile {folder}/sshd.pid", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no", "PrintMotd no", "LogLevel ERROR",
        "Subsystem sftp internal-sftp", ""]))
    host_public = (folder / "host_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[{address}]:{port} {host_public[0]} {host_public[1]}\n")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    command = [SSHD, "-D", "-e", "-f", str(config)]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    log = open(folder / "sshd.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _answers(address, port, netns):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {(folder / 'sshd.log').read_text()[-500:]}")
            time.sleep(0.05)
        yield SshServer(address, port, client_key, folder / "known_hosts", process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _answers(address: str, port: int, netns: str) -> bool:
    if netns:
        probe = subprocess.run(["ip", "netns", "exec", netns, "ss", "-ltn", f"sport = :{port}"],
                               capture_output=True, text=True)
        return str(port) in probe.stdout
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False
