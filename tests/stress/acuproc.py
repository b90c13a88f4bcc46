"""Small stdlib-only helpers for the stress runs (random_safety.py, crash_loop.py):
start the real acud on the simulated GPIO backend in a scratch directory, talk to
it over its socket, read the sim state file and trace (SPEC §5, §6).

ACUD (env) names the daemon binary (default: ./acud of this checkout);
ACUD_WRAPPER (env, split on spaces) is put in front of it, e.g. a valgrind command.
"""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ACUD = os.environ.get("ACUD") or os.path.join(REPO, "acud")
WRAPPER = shlex.split(os.environ.get("ACUD_WRAPPER", ""))


def mono_ns():
    return time.monotonic_ns()  # CLOCK_MONOTONIC, the clock of the sim trace


class Conn:
    """One persistent client connection: a JSON line out, a JSON line back."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.timeout = timeout

    def send(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def recv_line(self, timeout=None):
        timeout = timeout or self.timeout
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply line within {timeout}s (buffered {self.buf[:200]!r})")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError(f"connection closed by acud (buffered {self.buf[:200]!r})")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self, timeout=None):
        return json.loads(self.recv_line(timeout))

    def request(self, obj, timeout=None):
        self.send(obj)
        return self.recv(timeout)

    def timed(self, obj, timeout=None):
        """(reply, t_send, t_reply) with monotonic nanoseconds around the exchange."""
        t0 = mono_ns()
        self.send(obj)
        rep = self.recv(timeout)
        return rep, t0, mono_ns()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def read_text(path):
    """A file's text, or "" when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class DaemonProcess:
    """What every runner of an acud process shares: self.proc is its Popen."""
    proc = None

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout):
        """SIGTERM; the exit status, or None if it had to be killed."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


class Acud(DaemonProcess):
    """acud -f -c DIR/acud.conf; the config must use relative paths:
    socket run/acud.sock, state_dir state."""

    def __init__(self, tmpdir, conf_text, profiles=None):
        self.dir = tmpdir
        self.conf = os.path.join(tmpdir, "acud.conf")
        self.socket = os.path.join(tmpdir, "run", "acud.sock")
        self.state_dir = os.path.join(tmpdir, "state")
        os.makedirs(os.path.join(tmpdir, "profiles.d"), exist_ok=True)
        if profiles:
            with open(os.path.join(tmpdir, "profiles.d", "extra.conf"), "w") as f:
                f.write(profiles)
        self.write_config(conf_text)
        self.proc = None
        self.log_path = os.path.join(tmpdir, "acud.log")
        self.starts = 0

    def write_config(self, text):
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf)

    def cmd(self, *args):
        return WRAPPER + [ACUD] + list(args)

    def start(self, timeout=10.0, preexec_fn=None):
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"----- start #{self.starts} -----\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.cmd("-f", "-c", self.conf), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, cwd=self.dir,
                                     preexec_fn=preexec_fn)
        log.close()
        wait_accepting(self.proc, self.socket, timeout, lambda: self.log()[-3000:])
        return self

    def stop(self, timeout=10.0):
        return self.terminate(timeout)

    def all_off(self, timeout=20):
        p = subprocess.run(self.cmd("--all-off", "-c", self.conf), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout, cwd=self.dir)
        return p.returncode, p.stderr.decode(errors="replace")

    def connect(self, timeout=10.0):
        return Conn(self.socket, timeout)

    def log(self):
        return read_text(self.log_path)

    def cpu_ticks(self):
        """utime + stime of the daemon, in clock ticks (/proc/PID/stat)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])


# Scratch directories go to a tmpfs when there is one: the sim backend replaces
# its state file on every gate change from the event loop, and on a busy ext4
# disk one rename can block for 200 ms (measured with strace -T), disk latency
# the real GPIO backend never pays. ACU_TEST_TMP picks another place.
SCRATCH = os.environ.get("ACU_TEST_TMP") or (
    "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else "/tmp")


def wait_accepting(proc, sock_path, timeout, output, error=AssertionError):
    """Waits until the acud in proc accepts on sock_path; raises error with what
    output() returns if it exits or does not accept within timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        rc = proc.poll()
        if rc is not None:
            raise error(f"acud exited with {rc} during start-up:\n{output()}")
        if os.path.exists(sock_path):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sock_path)
                return
            except OSError:
                pass
            finally:
                s.close()
        if time.monotonic() > deadline:
            raise error(f"acud socket {sock_path} not accepting after {timeout}s:\n{output()}")
        time.sleep(0.005)


def make_tmpdir(prefix="acust."):
    # Short: a Unix socket path is limited to 107 bytes.
    return tempfile.mkdtemp(prefix=prefix, dir=SCRATCH)


def rmtree(d):
    shutil.rmtree(d, ignore_errors=True)


def read_sim_state(path):
    """{line: physical level} from the sim state file."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                k, v = line.split("=")
                out[k] = int(v)
    return out


def read_trace(path):
    """[(mono_ns, line, level)] from the sim trace."""
    out = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                out.append((int(parts[0]), parts[1], int(parts[2])))
    return out
