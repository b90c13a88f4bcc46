"""A real mosquitto for the MQTT tests (and make bench): a CA and per-board
certificates made with openssl, a password file (mosquitto_passwd) and an ACL
under which each board writes only its own topics, on free loopback ports: a
TLS listener that requires a client certificate (the boards) and a plain one
for the tests' own clients (mosquitto_sub / mosquitto_pub)."""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

ACL = """\
# Every board writes under its own name only, and reads the rooms and status
# of all (remote = yes). Home Assistant's discovery topics are shared.
pattern write acud/%u/#
pattern read acud/+/room/+
pattern read acud/+/status
pattern readwrite homeassistant/#
# The tests' watcher reads everything.
user watcher
topic read #
"""

PASSWORDS = {"floor1": "pw-floor1", "floor2": "pw-floor2", "floor3": "pw-floor3",
             "watcher": "pw-watcher", "intruder": "pw-intruder"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: rc {r.returncode}\n{r.stdout}{r.stderr}")


def make_pki(d, boards=("floor1", "floor2", "floor3", "intruder")):
    """ca.pem, server.pem/key (127.0.0.1 and localhost), BOARD.pem/key each,
    a password file and the ACL in directory d."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
          "-subj", "/CN=acud test CA"], d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def leaf(name, ext=None):
        _run(["openssl", "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
              "-subj", f"/CN={name}"], d)
        cmd = ["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
               "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2"]
        if ext:
            cmd += ["-extfile", ext]
        _run(cmd, d)

    leaf("server", "server.ext")
    for b in boards:
        leaf(b)
    pw = os.path.join(d, "passwd")
    open(pw, "w").close()
    for user, secret in PASSWORDS.items():
        _run(["mosquitto_passwd", "-b", pw, user, secret], d)
        with open(os.path.join(d, f"{user}.password"), "w") as f:
            f.write(secret + "\n")
    os.chmod(pw, 0o600)
    with open(os.path.join(d, "acl"), "w") as f:
        f.write(ACL)


class Broker:
    """mosquitto on two free loopback ports: tls_port (client certificates
    required) and port (plain); both with the password file and ACL."""

    def __init__(self, d, work):
        self.dir = d
        self.port = free_port()
        self.tls_port = free_port()
        self.conf = os.path.join(work, "mosquitto.conf")
        self.log = os.path.join(work, "mosquitto.log")
        with open(self.conf, "w") as f:
            # As root, mosquitto would become user mosquitto, who cannot read
            # the test's private directory.
            f.write(f"""\
user {pwd.getpwuid(os.getuid()).pw_name}
per_listener_settings false
allow_anonymous false
password_file {d}/passwd
acl_file {d}/acl
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true

listener {self.port} 127.0.0.1

listener {self.tls_port} 127.0.0.1
cafile {d}/ca.pem
certfile {d}/server.pem
keyfile {d}/server.key
require_certificate true
""")
        self.proc = None

    def start(self):
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=self._logf,
                                     stderr=self._logf, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                socket.create_connection(("127.0.0.1", self.tls_port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._logf.close()
        self.proc = None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- clients on the plain port -------------------------------------------------
    def _auth(self, user):
        return ["-h", "127.0.0.1", "-p", str(self.port), "-u", user, "-P", PASSWORDS[user]]

    def retained(self, topic, wait=1.0, user="watcher"):
        """{topic: payload} of what the broker retains under topic (a filter)."""
        r = subprocess.run(["mosquitto_sub", *self._auth(user), "-t", topic, "-v",
                            "--retained-only", "-W", str(max(1, round(wait))),
                            "-F", "%t\t%p"], capture_output=True, text=True, timeout=30)
        out = {}
        for line in r.stdout.splitlines():
            t, _, p = line.partition("\t")
            out[t] = p
        return out

    def pub(self, topic, payload, user="intruder", retain=False, file=None):
        cmd = ["mosquitto_pub", *self._auth(user), "-t", topic]
        if retain:
            cmd.append("-r")
        if file:
            cmd += ["-f", file]
        elif payload == "":
            cmd.append("-n")
        else:
            cmd += ["-m", payload]
        subprocess.run(cmd, check=True, timeout=30)

    def subscribe(self, *topics, user="watcher"):
        return Subscriber(self, topics, user)


class Subscriber:
    """mosquitto_sub in the background: every message as (monotonic ns when
    read, topic, payload, retained)."""

    def __init__(self, broker, topics, user):
        cmd = ["mosquitto_sub", *broker._auth(user), "-F", "%r\t%t\t%p"]
        for t in topics:
            cmd += ["-t", t]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self.msgs = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            retained, _, rest = line.rstrip("\n").partition("\t")
            topic, _, payload = rest.partition("\t")
            with self.lock:
                self.msgs.append((time.monotonic_ns(), topic, payload, retained == "1"))

    def messages(self):
        with self.lock:
            return list(self.msgs)

    def wait(self, pred, timeout=10.0, what="message"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages():
                if pred(m):
                    return m
            time.sleep(0.02)
        raise AssertionError(f"no {what} within {timeout} s; got "
                             f"{[(t, p[:80]) for _, t, p, _ in self.messages()][-20:]}")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class StalledBroker:
    """Accepts TCP connections and never reads or answers (a broker that hung)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop_flag = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stop_flag:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def close(self):
        self.stop_flag = True
        self.thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()
