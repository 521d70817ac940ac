"""Load test of ``sdrt serve`` on loopback: requests from concurrent clients, per max batch size, in one run.

    python -m benchmarks.serve_load engines/sd-shapes --requests 200 --concurrency 16 --replicas 2 \
        --batch-sizes 1 4 [--kill-after 50] [--json serve.json]

For each ``--max-batch-size`` it starts ``sdrt serve`` (a local Ray, ``--replicas`` replicas), sends
``--requests`` A1111 txt2img requests (same settings, own seeds) from ``--concurrency`` threads, and
reports throughput, p50/p95 latency, failures and the batch sizes the server reported; ``--kill-after N``
SIGKILLs one model replica after N answers. Every request has a timeout, so the run ends by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

PROMPTS = ("a red circle", "a blue square", "a green triangle", "a yellow circle", "a small red square")


def _interruptible() -> None:
    """Ctrl-C reaches the server as it does a user's: a shell starts background jobs (``cmd &``, CI runners)
    with SIGINT ignored, which their children inherit, and Python then installs no KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``sdrt serve`` in a child process, up once it prints its URL; stopped with Ctrl-C (SIGINT)."""

    def __init__(
        self, bundles: list[str], *options: str, port: int | None = None, start_timeout: float = 180
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"sdrt-serve-{self.port}.log"
        command = [
            sys.executable,
            "-m",
            "sdrt.cli.sdrt",
            "serve",
            *bundles,
            "--port",
            str(self.port),
            *options,
        ]
        self.handle = open(self.log, "w")  # noqa: SIM115 - open while the server runs
        self.process = subprocess.Popen(
            command,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_interruptible,
        )
        deadline = time.monotonic() + start_timeout
        while "sdrt serve: http" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sdrt serve did not start:\n{self.output()[-4000:]}")
            time.sleep(0.5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """Ctrl-C, as a user stops it; the exit status (killed, and -9, if it does not stop in time)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.handle.close()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def replica_pids(deployment: str = "model-", root: int | None = None) -> list[int]:
    """PIDs of the running Ray Serve replicas whose deployment name starts with ``deployment``; with ``root``,
    only those descending from that process (one ``sdrt serve``'s own Ray, when another runs beside it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            found = re.search(rf"ServeReplica:\w+:{re.escape(deployment)}", cmdline)
            if found and (root is None or _descends_from(int(entry.name), root)):
                pids.append(int(entry.name))
    return pids


def _descends_from(pid: int, root: int) -> bool:
    while pid > 1:
        if pid == root:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid, after the (command name)
    return False


@dataclass
class LoadReport:
    max_batch_size: int
    requests: int
    concurrency: int
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    batch_images: dict[str, int] = field(default_factory=dict)
    killed_pid: int | None = None

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s else 0.0

    def percentile(self, q: float) -> float:
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    def line(self) -> str:
        return (
            f"max-batch-size {self.max_batch_size}: {self.requests} requests in {self.wall_s:.1f} s = "
            f"{self.throughput:.2f} req/s; p50 {self.percentile(0.5):.0f} ms, p95 {self.percentile(0.95):.0f} ms; "
            f"statuses {self.statuses}; batch images {self.batch_images}"
        )


def payload(index: int, steps: int, size: int) -> dict:
    return {
        "prompt": PROMPTS[index % len(PROMPTS)],
        "seed": index,
        "steps": steps,
        "width": size,
        "height": size,
        "sampler_name": "Euler a",
        "cfg_scale": 7.5,
    }


def run_load(
    url: str,
    report: LoadReport,
    *,
    steps: int,
    size: int,
    timeout: float,
    kill_after: int | None,
    root: int | None = None,
) -> None:
    """Send the requests; fill ``report`` (status "error:Kind" for a request that got no answer); with
    ``kill_after``, SIGKILL a replica (of the server process ``root``, if given) after that many answers."""
    lock, answered = threading.Lock(), [0]
    statuses, batches = Counter(), Counter()

    def one(index: int) -> None:
        start = time.perf_counter()
        try:
            response = requests.post(
                f"{url}/sdapi/v1/txt2img", json=payload(index, steps, size), timeout=timeout
            )
            status = str(response.status_code)
            if response.ok:
                batches[str(json.loads(response.json()["info"])["sdrt"]["batch_images"])] += 1
        except requests.RequestException as error:
            status = f"error:{type(error).__name__}"
        with lock:
            statuses[status] += 1
            report.latencies_ms.append((time.perf_counter() - start) * 1000)
            answered[0] += 1
            if kill_after is not None and answered[0] == kill_after and report.killed_pid is None:
                pids = replica_pids(root=root)
                if pids:
                    report.killed_pid = pids[0]
                    os.kill(pids[0], signal.SIGKILL)

    start = time.perf_counter()
    with ThreadPoolExecutor(report.concurrency) as pool:
        list(pool.map(one, range(report.requests)))
    report.wall_s = time.perf_counter() - start
    report.statuses, report.batch_images = dict(statuses), dict(sorted(batches.items()))


def measure(bundle: str, max_batch_size: int, args: argparse.Namespace) -> LoadReport:
    report = LoadReport(max_batch_size, args.requests, args.concurrency)
    options = ["--replicas", str(args.replicas), "--max-batch-size", str(max_batch_size)]
    with ServerProcess([bundle], *options, "--batch-wait-ms", str(args.batch_wait_ms)) as server:
        for index in range(args.replicas * 2):  # warm every replica (first calls build ORT sessions' arenas)
            requests.post(
                f"{server.url}/sdapi/v1/txt2img", json=payload(index, args.steps, args.size), timeout=120
            )
        run_load(
            server.url,
            report,
            steps=args.steps,
            size=args.size,
            timeout=args.timeout,
            kill_after=args.kill_after,
        )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--batch-wait-ms", type=float, default=50)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--kill-after", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    reports = [measure(args.bundle, size, args) for size in args.batch_sizes]
    for report in reports:
        print(report.line())
    if len(reports) > 1:
        print(
            f"throughput ratio (max-batch-size {reports[-1].max_batch_size} / {reports[0].max_batch_size}): "
            f"{reports[-1].throughput / reports[0].throughput:.2f}x"
        )
    if args.json:
        args.json.write_text(
            json.dumps([asdict(r) | {"throughput": r.throughput} for r in reports], indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
