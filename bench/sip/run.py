#!/usr/bin/env python3
"""kemigo SIP benchmark: SIPp against kemigo and Kamailio on 127.0.0.1.

Four targets run Kamailio's reference KEMI routing
(/usr/share/doc/kamailio/examples/kemi/) with the same modules, users and
timers, each on its own loopback port, all started at once:

  kemigo-py    kemigo + kamailio-basic-kemi-python.py (embedded CPython)
  kemigo-go    kemigo --native basic (examples/native: the same logic in Go)
  kam-py       Kamailio 5.6 + app_python3 + the same Python script
  kam-native   Kamailio 5.6 + kamailio-basic-kemi-native.cfg

Three SIPp scenarios (scenarios/): OPTIONS keepalive, REGISTER with Digest
(401 then 200, users from an injection file), and an authenticated call
A -> B (407, INVITE with credentials, Record-Route, ACK and BYE through the
proxy; B is a SIPp UAS registered as "bob").

For every scenario and target, a bounded step search finds the highest
rate with zero failed calls (each step one SIPp run of STEP seconds, at
most 20 s with its drain); the steps of the four targets are interleaved
(round robin, rotating order), so that the machine's noise hits them
alike. A last step at a rate common to all targets gives the CPU-seconds
per 1000 calls (utime+stime of all the proxy's processes, /proc/PID/stat),
and the latency percentiles (SIPp's per-call response times, -trace_rtt).
Peak memory is sampled during every step.

Then, in the full run: a pprof CPU and allocation profile of kemigo under
the call load, and the worker scaling check on a Python >= 3.12 build
(a CPU-heavy route, one worker vs two).

Writes bench/RESULTS.md (the part above its "<!-- analysis -->" line) and
bench/sip-*.png; raw data, logs and profiles go to bench/out/sip/<time>/.

  python3 bench/sip/run.py            full run (~20 min)
  QUICK=1 python3 bench/sip/run.py    sanity run (~3 min): fewer, shorter steps
  python3 bench/sip/run.py --help     targets, scenarios, ports, workers, ...
"""

import argparse
import csv
import datetime
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
KEMI_DIR = "/usr/share/doc/kamailio/examples/kemi"
REF_SCRIPT = os.path.join(KEMI_DIR, "kamailio-basic-kemi-python.py")
KAM_MODDIR = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
IP = "127.0.0.1"
DOMAIN = IP  # subscribers' domain = the realm ($fd) of the scenarios
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# apt packages the benchmark needs, and a file that shows each is there
APT_NEEDS = [
    ("kamailio", "/usr/sbin/kamailio"),
    ("kamailio-python3-modules", KAM_MODDIR + "/app_python3.so"),
    ("kamailio-sqlite-modules", KAM_MODDIR + "/db_sqlite.so"),
    ("sip-tester", "/usr/bin/sipp"),
    ("python3-matplotlib", None),  # checked by import
    ("sqlite3", "/usr/bin/sqlite3"),
]

TARGETS = {
    "kemigo-py": "kemigo + Python script",
    "kemigo-go": "kemigo + native Go route",
    "kam-py": "Kamailio + app_python3",
    "kam-native": "Kamailio native cfg",
}
TARGET_ORDER = list(TARGETS)

# scenario: start rate, cap, users file kind, RTDs reported
SCENARIOS = {
    "options": dict(title="OPTIONS keepalive", xml="options.xml", start=1000, cap=20000, inf=None),
    "register": dict(title="REGISTER with digest (401, 200)", xml="register.xml", start=300, cap=8000, inf="reg"),
    "call": dict(title="authenticated call (407, INVITE, 200, ACK, BYE)", xml="uac_call.xml", start=100, cap=4000, inf="call"),
}

N_REG_USERS = 2000
PASSWORD = "bench-secret"


# --pin: the proxies on one CPU, SIPp on the other (empty: no pinning)
PIN = {"proxy": [], "sipp": []}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


# --------------------------------------------------------------- install --

def install():
    """apt-get installs what is missing (Kamailio 5.6 with app_python3 and
    db_sqlite, SIPp, matplotlib, sqlite3)."""
    missing = []
    for pkg, path in APT_NEEDS:
        if path is None:
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                missing.append(pkg)
        elif not os.path.exists(path):
            missing.append(pkg)
    if not os.path.exists(REF_SCRIPT) and "kamailio" not in missing:
        missing.append("kamailio")
    if not missing:
        return
    log("installing", " ".join(missing))
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "-q", "-y", "update"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "-q", "-y", "install", "--no-install-recommends"] + missing, check=True, env=env)


# ----------------------------------------------------------------- build --

def pyenv_pythons():
    """(version, prefix) of pyenv CPythons with a shared libpython, oldest first."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    out = []
    for d in glob.glob(os.path.join(root, "versions", "*")):
        v = os.path.basename(d)
        if not re.fullmatch(r"\d+\.\d+\.\d+", v):
            continue
        mm = ".".join(v.split(".")[:2])
        if os.path.exists(os.path.join(d, "lib", "pkgconfig", "python3-embed.pc")) and glob.glob(os.path.join(d, "lib", "libpython%s*.so*" % mm)):
            out.append((tuple(int(x) for x in v.split(".")), d))
    return [(".".join(map(str, v)), d) for v, d in sorted(out)]


def go_env(prefix):
    env = dict(os.environ)
    if prefix:
        pcp = os.path.join(prefix, "lib", "pkgconfig")
        env["PKG_CONFIG_PATH"] = pcp
        libdir = sh(["pkg-config", "--variable=libdir", "python3-embed"], env=env).strip()
        env["CGO_LDFLAGS"] = "-O2 -g -Wl,-rpath," + libdir
    return env


def build_kemigo(work, prefix=None, name="kemigo"):
    """go build ./cmd/kemigo; when main.go does not wire --native/--pprof
    yet, build a copy of the tree with main-wiring.patch applied."""
    out = os.path.join(work, name)
    env = go_env(prefix)
    subprocess.run(["go", "build", "-o", out, "./cmd/kemigo"], cwd=ROOT, env=env, check=True)
    helptext = subprocess.run([out, "run", "-h"], capture_output=True, text=True).stderr
    if "-native" in helptext and "-pprof" in helptext:
        return out
    log("cmd/kemigo/main.go does not wire --native/--pprof: building a copy with bench/sip/main-wiring.patch")
    src = os.path.join(work, "src-" + name)
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    files = sh(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT).split("\n")
    for f in files:
        if not f or f.startswith("bench/out/"):
            continue
        p = os.path.join(ROOT, f)
        if os.path.isfile(p):
            os.makedirs(os.path.dirname(os.path.join(src, f)), exist_ok=True)
            shutil.copy2(p, os.path.join(src, f))
    subprocess.run(["patch", "-s", "-p1", "-i", os.path.join(HERE, "main-wiring.patch")], cwd=src, check=True)
    subprocess.run(["go", "build", "-o", out, "./cmd/kemigo"], cwd=src, env=env, check=True)
    return out


# -------------------------------------------------------------- database --

def make_db(kemigo, path):
    """Kamailio's tables (kemigo db init writes Kamailio's schemas, which
    db_sqlite reads as they are), the subscribers, and the acc extra
    columns of the cfg (nullable: SQLite refuses the NULL Kamailio inserts
    for an absent $rU where MySQL's non-strict mode stores '')."""
    if os.path.exists(path):
        os.remove(path)
    sh([kemigo, "db", "init", "--db", "sqlite://" + path])
    con = sqlite3.connect(path)
    users = ["alice", "bob"] + ["u%05d" % i for i in range(N_REG_USERS)]
    rows = []
    for u in users:
        ha1 = hashlib.md5(("%s:%s:%s" % (u, DOMAIN, PASSWORD)).encode()).hexdigest()
        ha1b = hashlib.md5(("%s@%s:%s:%s" % (u, DOMAIN, DOMAIN, PASSWORD)).encode()).hexdigest()
        rows.append((u, DOMAIN, PASSWORD, ha1, ha1b))
    con.executemany("INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES (?,?,?,?,?)", rows)
    for t in ("acc", "missed_calls"):
        for col in ("src_user", "src_domain", "src_ip", "dst_ouser", "dst_user", "dst_domain"):
            con.execute("ALTER TABLE %s ADD COLUMN %s VARCHAR(128) DEFAULT ''" % (t, col))
    con.commit()
    con.close()


def write_injection_files(work):
    def auth(u):
        return "[authentication username=%s password=%s]" % (u, PASSWORD)
    with open(os.path.join(work, "users-reg.csv"), "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(N_REG_USERS):
            u = "u%05d" % i
            f.write("%s;%s\n" % (u, auth(u)))
    with open(os.path.join(work, "users-call.csv"), "w") as f:
        f.write("SEQUENTIAL\nalice;%s;bob\n" % auth("alice"))
    with open(os.path.join(work, "users-bob.csv"), "w") as f:
        f.write("SEQUENTIAL\nbob;%s\n" % auth("bob"))


# --------------------------------------------------------------- process --

def proc_tree(pid):
    """pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def mem_kib(pids):
    """(sum of VmRSS, sum of Pss, max VmHWM) over the processes, KiB."""
    rss = pss = hwm = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss, hwm


def machine_busy():
    """CPU-seconds the whole machine spent busy (all cores) so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def port_free(port):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:  # as servers do: TIME_WAIT does not count
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((IP, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def sip_ping(port, timeout=0.5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((IP, 0))
    s.settimeout(timeout)
    lp = s.getsockname()[1]
    msg = ("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-ping%d;rport\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:ping@%s:%d>;tag=p%d\r\nTo: <sip:%s:%d>\r\n"
           "Call-ID: ping-%d-%f@bench\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n") % (
        IP, port, IP, lp, lp, IP, lp, lp, IP, port, lp, time.time())
    try:
        s.sendto(msg.encode(), (IP, port))
        data = s.recv(4096).decode(errors="replace")
        return data.startswith("SIP/2.0 200")
    except OSError:
        return False
    finally:
        s.close()


class Target:
    def __init__(self, name, port, work, args, kind=None, native=False):
        self.name, self.port, self.work, self.args = name, port, work, args
        self._kind = kind
        self.native = native or name == "kemigo-go"
        self.proc = None
        self.uas = None
        self.uas_port = port + 100
        self.pprof = None
        self.steps = []          # every step run against this target
        self.peak = (0, 0, 0)    # rss, pss, hwm (KiB)
        self.workers = None

    @property
    def kind(self):
        return self._kind or ("kemigo" if self.name.startswith("kemigo") else "kamailio")

    def start(self, kemigo, pprof_port=None, workers=None, script=None, tag=None, env=None):
        tag = tag or self.name
        d = os.path.join(self.work, tag)
        os.makedirs(d, exist_ok=True)
        db = os.path.join(d, "db.sqlite")
        make_db(kemigo, db)
        logf = open(os.path.join(d, "proxy.log"), "w")
        if self.kind == "kemigo":
            with open(os.path.join(HERE, "kemigo.toml")) as f:
                toml = f.read().replace("@DB@", "sqlite://" + db).replace("@RUNDIR@", d)
            toml = re.sub(r'(?m)^listen = .*$', 'listen = ["udp:%s:%d", "tcp:%s:%d"]' % (IP, self.port, IP, self.port), toml)
            if script:
                toml = toml.replace('load = "%s"' % REF_SCRIPT, 'load = "%s"' % script)
            cfg = os.path.join(d, "kemigo.toml")
            with open(cfg, "w") as f:
                f.write(toml)
            cmd = [kemigo, "run", "-c", cfg]
            if self.native:
                cmd += ["--native", "basic"]
            if workers:
                cmd += ["--workers", str(workers)]
            if pprof_port:
                cmd += ["--pprof", "%s:%d" % (IP, pprof_port)]
                self.pprof = "http://%s:%d" % (IP, pprof_port)
        else:
            with open(os.path.join(HERE, "kamailio", "kamailio.cfg")) as f:
                cfgtext = f.read()
            rundir = os.path.join(d, "run")
            os.makedirs(rundir, exist_ok=True)
            for k, v in {"@LISTEN_IP@": IP, "@PORT@": str(self.port), "@DBURL@": "sqlite://" + db,
                         "@RUNDIR@": rundir, "@KEMIDIR@": KEMI_DIR}.items():
                cfgtext = cfgtext.replace(k, v)
            cfg = os.path.join(d, "kamailio.cfg")
            with open(cfg, "w") as f:
                f.write(cfgtext)
            # -DD: no daemon, children forked as usual; -E: log to stderr (a
            # file, as kemigo's); -m/-M: shared/private memory (MB), room for
            # the transactions of the highest rates
            cmd = ["kamailio", "-f", cfg, "-DD", "-E", "-m", "512", "-M", "16",
                   "-P", os.path.join(rundir, "kamailio.pid"), "-Y", rundir]
            if self.name == "kam-py":
                cmd[3:3] = ["-A", "WITH_CFGPYTHON3"]
        cmd = PIN["proxy"] + cmd
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=d,
                                     env=dict(os.environ, **env) if env else None)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (%s), see %s" % (self.name, self.proc.returncode, logf.name))
            if sip_ping(self.port):
                break
        else:
            raise RuntimeError("%s does not answer OPTIONS on port %d, see %s" % (self.name, self.port, logf.name))
        time.sleep(0.5)

    def pids(self):
        return proc_tree(self.proc.pid)

    def register_uas(self, scen_dir):
        """bob registers from the UAS port, then the UAS SIPp listens there."""
        d = os.path.join(self.work, self.name)
        r = subprocess.run(PIN["sipp"] + ["sipp", "-sf", os.path.join(scen_dir, "register.xml"), "-inf", os.path.join(self.work, "users-bob.csv"),
                            "-m", "1", "-i", IP, "-p", str(self.uas_port), "%s:%d" % (IP, self.port), "-nostdin",
                            "-timeout", "10s", "-timeout_error"], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError("%s: REGISTER of the callee failed (sipp exit %d)" % (self.name, r.returncode))
        self.uas = subprocess.Popen(PIN["sipp"] + ["sipp", "-sf", os.path.join(scen_dir, "uas.xml"), "-i", IP, "-p", str(self.uas_port),
                                     "-nostdin", "-buff_size", "4194304"], cwd=d,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        time.sleep(0.3)
        if self.uas.poll() is not None:
            raise RuntimeError("%s: UAS sipp exited (%d)" % (self.name, self.uas.returncode))

    def stop(self):
        for p in (self.uas, self.proc):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (self.uas, self.proc):
            if p is None:
                continue
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ------------------------------------------------------------------ sipp --

def epoch(s):
    # SIPp's time columns: "2026-11-25\t23:34:34.688754\t1795649674.688754"
    try:
        return float(s.strip().split("\t")[-1])
    except (ValueError, IndexError):
        return float("nan")


def read_stats(path):
    rows = []
    try:
        with open(path, newline="") as f:
            rd = csv.reader(f, delimiter=";")
            head = next(rd)
            for r in rd:
                if len(r) >= len(head) - 1:
                    rows.append(dict(zip(head, r)))
    except (OSError, StopIteration):
        pass
    return rows


def read_rtts(d):
    out = {}
    for p in glob.glob(os.path.join(d, "*_rtt.csv")):
        with open(p) as f:
            for line in f:
                parts = line.strip().split(";")
                if len(parts) < 3:
                    continue
                try:
                    ms, rtd = float(parts[1]), parts[2].strip()
                except ValueError:
                    continue
                out.setdefault(rtd, []).append(ms)
    return out


def pct(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(q / 100.0 * (len(v) - 1)))))
    return v[k]


class Step(dict):
    pass


def run_step(t, scen, rate, dur, scen_dir, work, idx, keep_rtt=True):
    """One SIPp run at rate for dur seconds against target t."""
    sc = SCENARIOS[scen]
    n = max(1, int(round(rate * dur)))
    d = os.path.join(work, t.name, "steps", "%s-%03d-%d" % (scen, idx, rate))
    os.makedirs(d, exist_ok=True)
    # one client port per target: REGISTER contacts are updated, not added
    lport = t.port + 200
    cmd = PIN["sipp"] + ["sipp", "-sf", os.path.join(scen_dir, sc["xml"]), "-m", str(n), "-r", str(rate), "-rp", "1000",
           "-l", str(max(200, rate * 4)), "-i", IP, "-p", str(lport), "%s:%d" % (IP, t.port), "-nostdin",
           "-timeout", "%ds" % (dur + 8), "-recv_timeout", "4000", "-buff_size", "4194304",
           # a late 180 after the 200 (Kamailio's parallel receivers) is not a failure
           "-default_behaviors", "all,-abortunexp",
           "-trace_stat", "-stf", os.path.join(d, "stat.csv"), "-fd", "1",
           "-trace_err", "-error_file", os.path.join(d, "errors.log")]
    if keep_rtt:
        cmd += ["-trace_rtt", "-rtt_freq", "1"]
    if sc["inf"]:
        cmd += ["-inf", os.path.join(work, "users-%s.csv" % sc["inf"])]
    pids = t.pids()
    peak = [0, 0, 0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            r, p, h = mem_kib(pids)
            peak[0], peak[1], peak[2] = max(peak[0], r), max(peak[1], p), max(peak[2], h)
            stop.wait(0.5)
    th = threading.Thread(target=sample, daemon=True)
    uas = [t.uas.pid] if t.uas is not None and t.uas.poll() is None else []
    c0, w0, m0, u0 = cpu_seconds(pids), time.time(), machine_busy(), cpu_seconds(uas)
    th.start()
    pr = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    _, status, ru = os.wait4(pr.pid, 0)
    pr.returncode = os.waitstatus_to_exitcode(status)
    time.sleep(0.3)  # the last replies and timers of this step
    c1, w1, m1, u1 = cpu_seconds(pids), time.time(), machine_busy(), cpu_seconds(uas)
    stop.set()
    th.join()
    sipp_cpu = ru.ru_utime + ru.ru_stime + (u1 - u0)
    # what the rest of the machine (other users of this shared VM) took, in cores
    noise = max(0.0, (m1 - m0) - (c1 - c0) - sipp_cpu) / max(1e-9, w1 - w0)
    rows = read_stats(os.path.join(d, "stat.csv"))
    last = rows[-1] if rows else {}
    ok = int(last.get("SuccessfulCall(C)", 0) or 0)
    failed = int(last.get("FailedCall(C)", 0) or 0)
    retrans = int(last.get("Retransmissions(C)", 0) or 0)
    # Did SIPp keep the rate? At each 1 s dump while sending, the calls
    # started must be on schedule (5 % and one call of slack), and all n
    # must be started by the first dump after dur (+0.2 s).
    sent_at = None
    prev_t, prev_n = 0.0, 0
    on_schedule = True
    for row in rows:
        tt = epoch(row.get("CurrentTime", "")) - epoch(row.get("StartTime", ""))
        nn = int(row.get("OutgoingCall(C)", 0) or 0)
        if nn >= n:
            sent_at = prev_t + (tt - prev_t) * (n - prev_n) / max(1, nn - prev_n)
            on_schedule = on_schedule and tt <= dur + 1.2
            break
        if tt > 0.2 and nn < 0.95 * rate * tt - 1:
            on_schedule = False
        prev_t, prev_n = tt, nn
    achieved = min(n / sent_at, rate) if sent_at else 0.0
    sustained = sent_at is not None and on_schedule
    rtts = read_rtts(d) if keep_rtt else {}
    lat = {}
    for rtd, vals in rtts.items():
        lat[rtd] = {"n": len(vals), "p50": pct(vals, 50), "p90": pct(vals, 90), "p99": pct(vals, 99),
                    "p999": pct(vals, 99.9), "max": max(vals)}
    for p in glob.glob(os.path.join(d, "*_rtt.csv")):
        os.remove(p)  # large; the percentiles are kept
    cpu = c1 - c0
    st = Step(target=t.name, scenario=scen, rate=rate, dur=dur, calls=n, ok=ok, failed=n - ok,
              retrans=retrans, sipp_rc=pr.returncode, achieved=round(achieved, 1), sustained=sustained,
              cpu_s=round(cpu, 3), wall_s=round(w1 - w0, 3), cpu_util=round(cpu / max(1e-9, w1 - w0), 3),
              cpu_per_1000=round(cpu / max(1, ok) * 1000, 4), rss_kib=peak[0], pss_kib=peak[1], hwm_kib=peak[2],
              sipp_cpu_s=round(sipp_cpu, 3), noise_cores=round(noise, 2),
              latency=lat, passed=(ok == n and sustained))
    # A scenario may also bound the response time: a proxy that queues
    # what it cannot serve answers every call of a short step, late.
    if sc.get("max_p99_ms") is not None and keep_rtt:
        p99 = max((v["p99"] for v in lat.values()), default=None)
        st["p99_ms"] = p99
        if p99 is None or p99 > sc["max_p99_ms"]:
            st["passed"] = False
    t.steps.append(st)
    t.peak = tuple(max(a, b) for a, b in zip(t.peak, peak))
    log("  %-11s %-8s %6d/s  ok %6d/%-6d  retrans %-5d sent %7.1f/s  cpu %6.3f s/1000  other load %.2f cores  %s" % (
        t.name, scen, rate, ok, n, retrans, achieved, st["cpu_per_1000"], noise, "PASS" if st["passed"] else "FAIL"))
    return st


NOISY = 0.35  # cores taken by other processes above which a failed step is run again


def run_step_retry(t, scen, rate, dur, scen_dir, work, idx):
    """run_step, once more when it failed while other processes of this
    shared machine took more than NOISY cores (the first run is kept in
    the data, marked noisy)."""
    st = run_step(t, scen, rate, dur, scen_dir, work, idx)
    if not st["passed"] and st["noise_cores"] > NOISY:
        st["noisy"] = True
        log("  (other load %.2f cores: once more)" % st["noise_cores"])
        time.sleep(1.0)
        st = run_step(t, scen, rate, dur, scen_dir, work, idx + 1000)
    return st


def search(targets, scen, args, scen_dir, work):
    """Interleaved bounded search of the highest zero-failure rate: double
    from the start rate until a step fails (or the cap), then bisect."""
    sc = SCENARIOS[scen]
    state = {t.name: dict(good=0, bad=None, next=sc["start"] if not args.quick else sc["start"] * 2, left=args.steps) for t in targets}
    idx = 0
    rnd = 0
    while any(s["left"] > 0 and s["next"] for s in state.values()):
        order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
        rnd += 1
        for t in order:
            s = state[t.name]
            if s["left"] <= 0 or not s["next"]:
                continue
            rate = s["next"]
            st = run_step_retry(t, scen, rate, args.step, scen_dir, work, idx)
            idx += 1
            s["left"] -= 1
            if st["passed"]:
                s["good"] = max(s["good"], rate)
            else:
                s["bad"] = rate if s["bad"] is None else min(s["bad"], rate)
            if s["bad"] is None:
                nxt = min(rate * 2, sc["cap"])
                s["next"] = nxt if nxt > rate else None
            else:
                lo = s["good"] if s["good"] else 0
                hi = s["bad"]
                nxt = int(round((lo + hi) / 2 / 10.0) * 10) if lo else max(10, hi // 2)
                if lo and (hi - lo) / lo < sc.get("precision", 0.12) or nxt <= lo or nxt >= hi:
                    s["next"] = None
                else:
                    s["next"] = nxt
    return {name: s["good"] for name, s in state.items()}


# --------------------------------------------------------------- profile --

def fetch(url, path, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as r, open(path, "wb") as f:
        f.write(r.read())


def profile(t, kemigo_bin, scen, rate, secs, scen_dir, work):
    """CPU profile during a steady load, and the allocations of that window
    (allocs before/after, compared with -base)."""
    d = os.path.join(work, "profiles")
    os.makedirs(d, exist_ok=True)
    base = os.path.join(d, "%s-%s" % (t.name, scen))
    fetch(t.pprof + "/debug/pprof/allocs", base + "-allocs0.pb.gz", 10)
    res = {}
    th = threading.Thread(target=lambda: res.setdefault("st", run_step(t, scen, rate, secs + 2, scen_dir, work, 900, keep_rtt=False)))
    th.start()
    time.sleep(1.0)
    fetch(t.pprof + "/debug/pprof/profile?seconds=%d" % secs, base + "-cpu.pb.gz", secs + 15)
    fetch(t.pprof + "/debug/pprof/allocs", base + "-allocs1.pb.gz", 10)
    th.join()
    tops = {}
    for kind, extra in (("cpu", ["-top", "-nodecount=45"]), ("cpu-cum", ["-top", "-cum", "-nodecount=45"])):
        tops[kind] = subprocess.run(["go", "tool", "pprof"] + extra + [kemigo_bin, base + "-cpu.pb.gz"],
                                    capture_output=True, text=True).stdout
    for kind, extra in (("alloc_space", ["-sample_index=alloc_space"]), ("alloc_objects", ["-sample_index=alloc_objects"])):
        tops[kind] = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=35"] + extra +
                                    ["-base", base + "-allocs0.pb.gz", kemigo_bin, base + "-allocs1.pb.gz"],
                                    capture_output=True, text=True).stdout
    for k, v in tops.items():
        with open(base + "-%s.txt" % k, "w") as f:
            f.write(v)
    return res.get("st"), tops


# --------------------------------------------------------------- scaling --

CPU_HEAVY = '''# kemigo bench/sip: a CPU-heavy route for the worker scaling check. Every
# request runs a pure-Python loop (a few ms), then an OPTIONS to the
# proxy is answered 200 Keepalive.
import KSR

def heavy(n):
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) % 1000003
    return acc

N = int(%d)

def mod_init():
    return kamailio()

class kamailio:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        heavy(N)
        KSR.sl.sl_send_reply(200, "Keepalive")
        return 1
'''


def scaling(args, work, scen_dir):
    pys = [(v, d) for v, d in pyenv_pythons() if tuple(int(x) for x in v.split(".")[:2]) >= (3, 12)]
    if not pys:
        log("scaling: skipped (no pyenv Python >= 3.12 with a shared libpython)")
        return None
    ver, prefix = pys[-1] if not args.scaling_python else next(((v, d) for v, d in pys if v.startswith(args.scaling_python)), pys[-1])
    log("scaling: building kemigo with Python", ver)
    kb = build_kemigo(work, prefix, "kemigo-py" + ver)
    script = os.path.join(work, "cpu_heavy.py")
    with open(script, "w") as f:
        f.write(CPU_HEAVY.replace("%d", str(args.heavy_loop), 1))
    res = {"python": ver, "loop": args.heavy_loop}
    ts = []
    for i, w in enumerate((1, 2)):
        t = Target("scale-w%d" % w, args.port_base + 20 + i, work, args, kind="kemigo")
        t.start(kb, workers=w, script=script, tag="scale-w%d" % w)
        t.workers = w
        ts.append(t)
    try:
        saved = SCENARIOS["options"].copy()
        # passing: every request answered, with p99 <= 100 ms (a saturated
        # worker queues, and the step's calls are then answered late);
        # bisection to 5 %, so the ratio is within about 10 %
        SCENARIOS["options"].update(start=100, cap=8000, max_p99_ms=100, precision=0.05)
        steps, args.steps = args.steps, max(args.steps, 10)
        best = search(ts, "options", args, scen_dir, work)
        args.steps = steps
        SCENARIOS["options"] = saved
    finally:
        for t in ts:
            t.stop()
    res["rate_w1"], res["rate_w2"] = best["scale-w1"], best["scale-w2"]
    res["ratio"] = (best["scale-w2"] / best["scale-w1"]) if best["scale-w1"] else float("nan")
    res["steps"] = [s for t in ts for s in t.steps]
    return res


# --------------------------------------------------------------- results --

def machine_info(kemigo):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    kv = subprocess.run([kemigo, "version"], capture_output=True, text=True).stdout.strip()
    kam = subprocess.run(["kamailio", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    sipp = subprocess.run(["sipp", "-v"], capture_output=True, text=True).stdout.strip().split("\n")[0].strip()
    try:
        lavg = open("/proc/loadavg").read().split()[:3]
    except OSError:
        lavg = []
    return dict(date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), cpu=cpu,
                cores=os.cpu_count(), kernel=platform.release(), kemigo=kv, kamailio=kam, sipp=sipp,
                go=sh(["go", "version"]).strip(), loadavg_start=lavg)


def fmt_rate(x):
    return "%d" % x if x else "none"


def ratio(a, b):
    return a / b if a and b else float("nan")


def write_results(info, results, prof, scal, args, work):
    """bench/RESULTS.md: measured part (regenerated), then whatever follows
    the "<!-- analysis -->" line of the previous file (kept)."""
    path = os.path.join(ROOT, "bench", "RESULTS.md")
    kept = ""
    if os.path.exists(path):
        old = open(path).read()
        i = old.find("<!-- analysis -->")
        if i >= 0:
            kept = old[i:]
    if not kept:
        kept = "<!-- analysis -->\n"
    L = []
    w = L.append
    w("# kemigo SIP benchmark results\n")
    w("Generated by `%s` (bench/sip/run.py%s). Raw data: `%s`.\n" % (
        "QUICK=1 make bench-sip" if args.quick else "make bench-sip", " --quick" if args.quick else "", os.path.relpath(work, ROOT)))
    w("| | |\n|---|---|")
    w("| date | %s |" % info["date"])
    w("| CPU | %s, %d cores (`nproc`; a shared VM: load average %s at start) |" % (info["cpu"], info["cores"], " ".join(info["loadavg_start"])))
    w("| kemigo | %s; %s |" % (info["kemigo"], info["go"]))
    w("| Kamailio | %s, app_python3 on Debian's Python 3.11 |" % info["kamailio"])
    if info.get("pin"):
        w("| SIPp | %s (load generator and UAS pinned to CPU %s; every proxy pinned to CPU %s: `--pin`) |" % (
            info["sipp"], info["pin"][0], info["pin"][1]))
    else:
        w("| SIPp | %s (load generator and UAS on the same 2 cores) |" % info["sipp"])
    w("| workers | kemigo: %s; Kamailio: children=2 (UDP receivers) + 2 TCP, plus timer/ctl/rpc processes |" % results["kemigo_workers"])
    w("| steps | %d s each (%s), at most %d per target and scenario, interleaved across targets |\n" % (
        args.step, "quick mode" if args.quick else "full run", args.steps))
    w("Targets: %s.\n" % "; ".join("**%s** = %s" % (k, v) for k, v in TARGETS.items()))
    w("CPU is utime+stime of every process of the proxy (kemigo: one process; Kamailio: the main process and all its children)"
      " from /proc/PID/stat over the SIPp run, divided by the calls completed. Memory: the highest sum of VmRSS"
      " (and of Pss, which counts Kamailio's shared memory once) sampled every 0.5 s over the whole run.\n")

    noise = sorted(st.get("noise_cores", 0) for st in results.get("steps", []))
    if noise:
        w("Other processes of the machine (not the proxy, not SIPp) took a median %.2f and a maximum %.2f cores"
          " during the steps (%d of %d steps above %.2f): other users of this shared VM.\n" % (
              noise[len(noise) // 2], noise[-1], sum(1 for x in noise if x > NOISY), len(noise), NOISY))

    # max rate table
    w("## Highest rate with zero failed calls (calls/s)\n")
    w("| scenario | " + " | ".join(TARGET_ORDER) + " | kemigo-py / kam-py | kemigo-py / kam-native | kemigo-go / kemigo-py |")
    w("|---|" + "---:|" * (len(TARGET_ORDER) + 3))
    for scen in results["scenarios"]:
        best = results["best"][scen]
        w("| %s | %s | %.2f | %.2f | %.2f |" % (scen, " | ".join(fmt_rate(best[t]) for t in TARGET_ORDER),
                                           ratio(best["kemigo-py"], best["kam-py"]), ratio(best["kemigo-py"], best["kam-native"]),
                                           ratio(best["kemigo-go"], best["kemigo-py"])))
    w("\n`none`: no step passed. A step passes when every call succeeded and SIPp"
      " kept the asked rate (calls started on schedule at every 1 s dump, 5 % slack); the search doubles the rate from a start value (up to a cap: options 20000/s), then bisects to within"
      " ~12 %, so each figure is a lower bound within that step.\n")

    # CPU per 1000 calls at the common rate
    w("## CPU-seconds per 1000 calls, at one rate for all targets\n")
    w("| scenario | rate | " + " | ".join(TARGET_ORDER) + " | kemigo-py / kam-native | kemigo-py / kemigo-go | kemigo-py / kam-py |")
    w("|---|---:|" + "---:|" * (len(TARGET_ORDER) + 3))
    for scen in results["scenarios"]:
        ref = results["ref"][scen]
        c = {t: (ref[t]["cpu_per_1000"] if ref.get(t) and ref[t]["ok"] else float("nan")) for t in TARGET_ORDER}
        w("| %s | %d/s | %s | %.2f | %.2f | %.2f |" % (scen, results["ref_rate"][scen], " | ".join("%.3f" % c[t] for t in TARGET_ORDER),
                                                    c["kemigo-py"] / c["kam-native"], c["kemigo-py"] / c["kemigo-go"], c["kemigo-py"] / c["kam-py"]))
    w("\nAt the highest passing rate of each target:\n")
    w("| scenario | " + " | ".join(TARGET_ORDER) + " |")
    w("|---|" + "---:|" * len(TARGET_ORDER))
    for scen in results["scenarios"]:
        cells = []
        for t in TARGET_ORDER:
            st = results["beststep"][scen].get(t)
            cells.append("%.3f (at %d/s, %.0f %% CPU)" % (st["cpu_per_1000"], st["rate"], st["cpu_util"] * 100) if st else "-")
        w("| %s | %s |" % (scen, " | ".join(cells)))

    # latency
    w("\n## Latency at the common rate (ms, SIPp response times)\n")
    w("RTD 1: OPTIONS -> 200; REGISTER -> 401 -> REGISTER -> 200; call: first INVITE -> 407 -> ACK, INVITE -> 200 (setup)."
      " RTD 2 (call): BYE -> 200.\n")
    w("SIPp's response times come in steps of its clock (1 ms at best, 4 ms under this load), so sub-millisecond"
      " answers show as 0: read the tails and the call setup, not the OPTIONS medians.\n")
    w("| scenario | target | n | p50 | p90 | p99 | p99.9 | max |")
    w("|---|---|---:|---:|---:|---:|---:|---:|")
    for scen in results["scenarios"]:
        for t in TARGET_ORDER:
            st = results["ref"][scen].get(t)
            if not st:
                continue
            for rtd, l in sorted(st["latency"].items()):
                w("| %s%s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |" % (scen, "" if rtd == "1" else " (BYE)", t, l["n"], l["p50"], l["p90"], l["p99"], l["p999"], l["max"]))

    # memory
    w("\n## Peak memory over the run (MiB)\n")
    w("| target | processes | sum of VmRSS | sum of Pss | largest VmHWM |")
    w("|---|---:|---:|---:|---:|")
    for t in TARGET_ORDER:
        m = results["mem"].get(t)
        if m:
            w("| %s | %d | %.1f | %.1f | %.1f |" % (t, m["nproc"], m["rss"] / 1024, m["pss"] / 1024, m["hwm"] / 1024))

    # targets
    w("\n## Targets of the issue\n")
    w("| target | measured | verdict |")
    w("|---|---|---|")
    for row in results["checks"]:
        w("| %s | %s | %s |" % row)
    if scal:
        w("\nWorker scaling (CPU-heavy route: a pure-Python loop of %d iterations per request, OPTIONS answered 200,"
          " a step passing when every request is answered with a p99 response time <= 100 ms, bisected to 5 %%;"
          " kemigo built with Python %s): one worker %d/s, two workers %d/s: **%.2fx**.\n" % (
              scal["loop"], scal["python"], scal["rate_w1"], scal["rate_w2"], scal["ratio"]))
    if prof:
        w("\nProfiles (kemigo under the call load, %s): `%s`.\n" % (prof, os.path.relpath(os.path.join(work, "profiles"), ROOT)))
    w("\nPlots: [rate vs CPU](sip-rate-cpu.png), [CPU per 1000 calls](sip-cpu-per-call.png), [latency](sip-latency.png).\n")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n" + kept)
    log("wrote", os.path.relpath(path, ROOT))


def plots(results, work):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"kemigo-py": "#1f77b4", "kemigo-go": "#2ca02c", "kam-py": "#d62728", "kam-native": "#ff7f0e"}
    scens = results["scenarios"]
    out = os.path.join(ROOT, "bench")

    fig, axes = plt.subplots(1, len(scens), figsize=(5.2 * len(scens), 4.4), squeeze=False)
    for ax, scen in zip(axes[0], scens):
        for t in TARGET_ORDER:
            steps = sorted((s for s in results["steps"] if s["target"] == t and s["scenario"] == scen), key=lambda s: s["rate"])
            if not steps:
                continue
            xs = [s["rate"] for s in steps]
            ys = [s["cpu_util"] * 100 for s in steps]
            ax.plot(xs, ys, "-", color=colors[t], alpha=0.6)
            ax.scatter([s["rate"] for s in steps if s["passed"]], [s["cpu_util"] * 100 for s in steps if s["passed"]],
                       color=colors[t], marker="o", label=t)
            ax.scatter([s["rate"] for s in steps if not s["passed"]], [s["cpu_util"] * 100 for s in steps if not s["passed"]],
                       color=colors[t], marker="x")
        ax.set_title(SCENARIOS[scen]["title"], fontsize=10)
        ax.set_xlabel("offered rate (calls/s)")
        ax.set_ylabel("proxy CPU (% of one core)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, title="o pass   x fail", title_fontsize=8)
    fig.suptitle("Proxy CPU vs offered rate (every search step; 2 cores shared with SIPp)", fontsize=11)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sip-rate-cpu.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(scens), figsize=(4.6 * len(scens), 4.0), squeeze=False)
    for ax, scen in zip(axes[0], scens):
        vals = [results["ref"][scen].get(t, {}).get("cpu_per_1000", float("nan")) for t in TARGET_ORDER]
        bars = ax.bar(TARGET_ORDER, vals, color=[colors[t] for t in TARGET_ORDER])
        for b, v in zip(bars, vals):
            ax.annotate("%.3f" % v, (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
        ax.set_title("%s at %d/s" % (scen, results["ref_rate"][scen]), fontsize=10)
        ax.set_ylabel("CPU-seconds per 1000 calls")
        ax.tick_params(axis="x", labelsize=8, rotation=15)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("CPU cost per call at a common rate (lower is better)", fontsize=11)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sip-cpu-per-call.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(scens), figsize=(4.8 * len(scens), 4.2), squeeze=False)
    qs = ["p50", "p90", "p99", "p999"]
    for ax, scen in zip(axes[0], scens):
        width = 0.2
        for i, t in enumerate(TARGET_ORDER):
            st = results["ref"][scen].get(t)
            lat = st["latency"].get("1") if st else None
            ys = [lat[q] if lat else float("nan") for q in qs]
            ax.bar([j + (i - 1.5) * width for j in range(len(qs))], ys, width, label=t, color=colors[t])
        ax.set_xticks(range(len(qs)))
        ax.set_xticklabels(["p50", "p90", "p99", "p99.9"])
        ax.set_yscale("log")
        ax.set_ylabel("ms (log scale)")
        ax.set_title("%s at %d/s" % (scen, results["ref_rate"][scen]), fontsize=10)
        ax.grid(True, axis="y", alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle("Response time percentiles (SIPp RTD 1) at a common rate", fontsize=11)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sip-latency.png"), dpi=110)
    plt.close(fig)
    log("wrote bench/sip-rate-cpu.png, bench/sip-cpu-per-call.png, bench/sip-latency.png")


def checks(results, scal):
    out = []
    best, ref = results["best"], results["ref"]

    def c(scen, t):
        st = ref[scen].get(t)
        return st["cpu_per_1000"] if st and st["ok"] else float("nan")
    for scen in results["scenarios"]:
        r = c(scen, "kemigo-py") / c(scen, "kam-native")
        out.append(("kemigo+Python CPU/1000 calls <= Kamailio native cfg (%s)" % scen, "%.2fx" % r,
                    "met" if r <= 1 else "missed by %.0f %%" % ((r - 1) * 100)))
    for scen in results["scenarios"]:
        r = ratio(best[scen]["kemigo-py"], best[scen]["kam-py"])
        out.append(("kemigo+Python zero-failure rate >= 1.5x Kamailio+app_python3 (%s)" % scen,
                    "%s vs %s/s: %.2fx" % (best[scen]["kemigo-py"], best[scen]["kam-py"], r),
                    "met" if r >= 1.5 else "missed: %.2fx short of 1.5x" % (1.5 - r) if r == r else "n/a"))
    for scen in results["scenarios"]:
        r = c(scen, "kemigo-py") / c(scen, "kemigo-go")
        out.append(("Python route CPU <= 1.15x native Go route (%s)" % scen, "%.2fx" % r,
                    "met" if r <= 1.15 else "missed by %.0f %% (of the 1.15x)" % ((r / 1.15 - 1) * 100)))
    if scal:
        r = scal["ratio"]
        out.append(("Python >= 3.12: two workers >= 1.8x one (CPU-heavy route)",
                    "%s vs %s/s: %.2fx (Python %s)" % (scal["rate_w2"], scal["rate_w1"], r, scal["python"]),
                    "met" if r >= 1.8 else "missed: %.2fx" % r))
    else:
        out.append(("Python >= 3.12: two workers >= 1.8x one", "not measured in this run", "-"))
    return out


# ------------------------------------------------------------------ main --

def main():
    # SIGTERM (kill PID) stops the proxies and SIPps too (the finally blocks)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    # Debian's python3-matplotlib is for /usr/bin/python3: run there when
    # another python3 (pyenv) comes first in PATH
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
                and not os.environ.get("KEMIGO_BENCH_REEXEC"):
            os.environ["KEMIGO_BENCH_REEXEC"] = "1"
            os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)] + sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quick = os.environ.get("QUICK", "") not in ("", "0")
    ap.add_argument("--quick", action="store_true", default=quick, help="sanity run: QUICK=1 does the same")
    ap.add_argument("--scenarios", default="options,register,call")
    ap.add_argument("--targets", default=",".join(TARGET_ORDER))
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("PORT_BASE", "25060")),
                    help="proxies on base+0..3, UAS on +100.., SIPp clients on +200.., pprof +50..; default 25060, below the ephemeral range")
    ap.add_argument("--step", type=int, help="seconds of load per step (full 6, quick 2)")
    ap.add_argument("--steps", type=int, help="steps per target and scenario (full 7, quick 2)")
    ap.add_argument("--workers", type=int, default=0, help="kemigo workers (0: kemigo's default)")
    ap.add_argument("--kemigo", help="a kemigo binary with --native and --pprof (default: build one)")
    ap.add_argument("--python", help="build kemigo with this pyenv Python (3.12, 3.13); default: pkg-config's python3-embed")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--scaling-only", action="store_true")
    ap.add_argument("--scaling-python", help="pyenv Python for the scaling check (default: newest >= 3.12)")
    ap.add_argument("--heavy-loop", type=int, default=60000, help="iterations of the CPU-heavy route's loop")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--pin", metavar="SIPP_CPU,PROXY_CPU", help="pin SIPp and the proxies to separate CPUs (taskset), e.g. 0,1:"
                    " each proxy gets one core, so the rates compare proxies and not the load generator")
    ap.add_argument("--profile-only", metavar="SCENARIO", help="only profile kemigo-py and kemigo-go under SCENARIO at --profile-rate")
    ap.add_argument("--profile-rate", type=int, default=200)
    ap.add_argument("--profile-secs", type=int, default=10)
    ap.add_argument("--report", metavar="DIR", help="only write RESULTS.md and the plots again from DIR/results.json")
    args = ap.parse_args()
    if args.report:
        with open(os.path.join(args.report, "results.json")) as f:
            saved = json.load(f)
        r = saved["results"]
        a = saved.get("args") or {}
        args.quick = a.get("quick", args.quick)
        args.step = a.get("step", args.step or (2 if args.quick else 6))
        args.steps = a.get("steps", args.steps or (2 if args.quick else 7))
        r["checks"] = checks(r, saved.get("scaling"))
        prof = "10 s CPU at 70 % of each kemigo target's highest call rate" if os.path.isdir(os.path.join(args.report, "profiles")) else None
        write_results(saved["info"], r, prof, saved.get("scaling"), args, os.path.abspath(args.report))
        plots(r, args.report)
        return
    if args.step is None:
        args.step = 2 if args.quick else 6
    if args.steps is None:
        args.steps = 2 if args.quick else 7
    assert args.step + 8 <= 20 or args.quick, "a step (load + drain) must stay within 20 s"

    if not args.no_install:
        install()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = os.path.join(ROOT, "bench", "out", "sip", stamp)
    os.makedirs(work, exist_ok=True)
    scen_dir = os.path.join(HERE, "scenarios")
    t_start = time.time()

    prefix = None
    if args.python:
        prefix = next((d for v, d in pyenv_pythons() if v.startswith(args.python)), None)
        if not prefix:
            sys.exit("no pyenv Python %s with a shared libpython" % args.python)
    kemigo = args.kemigo or build_kemigo(work, prefix)
    info = machine_info(kemigo)
    if args.pin:
        cpus = args.pin.split(",")
        if len(cpus) != 2 or not all(c.isdigit() for c in cpus):
            sys.exit("--pin: want SIPP_CPU,PROXY_CPU, e.g. 0,1")
        PIN["sipp"], PIN["proxy"] = ["taskset", "-c", cpus[0]], ["taskset", "-c", cpus[1]]
        info["pin"] = cpus
    log("machine:", info["cpu"], "x", info["cores"], "|", info["kemigo"], "|", info["kamailio"], "| load", " ".join(info["loadavg_start"]))
    write_injection_files(work)

    scal = None
    if args.scaling_only:
        scal = scaling(args, work, scen_dir)
        print(json.dumps({k: v for k, v in scal.items() if k != "steps"}, indent=1))
        return

    if args.profile_only:
        names = ["kemigo-py", "kemigo-go"]
        targets = []
        try:
            for i, n in enumerate(TARGET_ORDER[:2]):
                t = Target(n, args.port_base + i, work, args)
                t.start(kemigo, pprof_port=args.port_base + 50 + i, workers=args.workers or None)
                targets.append(t)
                if args.profile_only == "call":
                    t.register_uas(scen_dir)
            for t in targets:
                log("== profile %s under %s at %d/s" % (t.name, args.profile_only, args.profile_rate))
                st, tops = profile(t, kemigo, args.profile_only, args.profile_rate, args.profile_secs, scen_dir, work)
                print(tops["cpu"][:6000])
        finally:
            for t in targets:
                t.stop()
        log("profiles in", os.path.relpath(os.path.join(work, "profiles"), ROOT))
        return

    names = [n for n in args.targets.split(",") if n]
    ports = [args.port_base + i for i in range(len(TARGET_ORDER))]
    for p in ports + [p + 100 for p in ports] + [p + 200 for p in ports]:
        for _ in range(10):
            if port_free(p):
                break
            time.sleep(0.5)
        else:
            sys.exit("port %d is taken: choose another --port-base" % p)
    targets = []
    try:
        for i, n in enumerate(TARGET_ORDER):
            if n not in names:
                continue
            t = Target(n, ports[i], work, args)
            log("starting", n, "on", "%s:%d" % (IP, t.port))
            t.start(kemigo, pprof_port=(args.port_base + 50 + i) if n.startswith("kemigo") else None,
                    workers=args.workers or None)
            targets.append(t)
        kw = re.search(r'"workers":(\d+)', open(os.path.join(work, "kemigo-py", "proxy.log")).read()) if "kemigo-py" in names else None
        kemigo_workers = "%s (Python %s)" % (kw.group(1) if kw else "?", re.search(r"Python ([\d.]+)", info["kemigo"]).group(1))
        results = dict(scenarios=[s for s in args.scenarios.split(",") if s], best={}, ref={}, ref_rate={}, beststep={},
                       kemigo_workers=kemigo_workers)
        for scen in results["scenarios"]:
            if scen == "call":
                for t in targets:
                    t.register_uas(scen_dir)
            log("== %s: search" % scen)
            best = search(targets, scen, args, scen_dir, work)
            results["best"][scen] = {t: best.get(t, 0) for t in TARGET_ORDER}
            results["beststep"][scen] = {}
            for t in targets:
                ok = [s for s in t.steps if s["scenario"] == scen and s["passed"] and s["rate"] == best[t.name]]
                if ok:
                    results["beststep"][scen][t.name] = ok[-1]
            # the common rate: half the lowest maximum (rounded), or the
            # start rate when a target never passed
            lows = [b for b in best.values() if b]
            common = max(10, int(min(lows) * 0.5 / 10) * 10) if lows else SCENARIOS[scen]["start"] // 2
            results["ref_rate"][scen] = common
            log("== %s: every target at %d/s" % (scen, common))
            results["ref"][scen] = {}
            for t in targets:
                results["ref"][scen][t.name] = run_step(t, scen, common, args.step + (2 if not args.quick else 1), scen_dir, work, 500)
        prof = None
        if not args.quick and not args.no_profile and "call" in results["scenarios"]:
            for t in targets:
                if t.name in ("kemigo-py", "kemigo-go"):
                    rate = max(10, int(results["best"]["call"][t.name] * 0.7)) if results["best"]["call"][t.name] else 50
                    log("== profile %s under the call load at %d/s" % (t.name, rate))
                    profile(t, kemigo, "call", rate, 10, scen_dir, work)
                    prof = "10 s CPU at 70 % of each kemigo target's highest call rate"
        results["mem"] = {}
        for t in targets:
            results["mem"][t.name] = dict(nproc=len(t.pids()), rss=t.peak[0], pss=t.peak[1], hwm=t.peak[2])
    finally:
        for t in targets:
            t.stop()
    results["steps"] = [s for t in targets for s in t.steps]

    def save():
        with open(os.path.join(work, "results.json"), "w") as f:
            json.dump(dict(info=info, results=results, scaling=scal,
                           args=dict(quick=args.quick, step=args.step, steps=args.steps)), f, indent=1, default=str)
    save()
    if not args.quick and not args.no_scaling:
        try:
            scal = scaling(args, work, scen_dir)
        except Exception as e:  # the main results are kept
            log("scaling failed:", repr(e))
    results["checks"] = checks(results, scal)
    save()
    write_results(info, results, prof, scal, args, work)
    plots(results, work)
    for row in results["checks"]:
        log("target: %s: %s -> %s" % row)
    log("done in %.1f min; data in %s" % ((time.time() - t_start) / 60, os.path.relpath(work, ROOT)))


if __name__ == "__main__":
    main()
