"""run.log: Flower's stream cleaned to plain text, one line per event, irrelevant advice out."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from common.settings import PROJECT_ROOT
from simulations.logstream import LogStream, clean_line, clean_lines, is_irrelevant, pump

# Lines as `flwr log --stream` printed them for a 3-client simulation (flwr 1.42, Ray 2.55);
# the last one, a client warning as Ray forwards it from its actor, is made up.
G, Y, R, C = "\x1b[92m", "\x1b[93m", "\x1b[0m", "\x1b[36m"
# Where Ray's warning names its source: inside this checkout's virtualenv, wherever that is.
RAY_WORKER = PROJECT_ROOT / ".venv/lib/python3.11/site-packages/ray/_private/worker.py"
STREAMED = [
    "Using SuperLink: skydistill (127.0.0.1:40731)\n",
    f"{G}INFO {R}:      Starting logstream for run_id `2528606064632296995`\n",
    f"{G}INFO {R}:      Starting Flower Simulation\n",
    f"{Y}WARNING {R}:   Since flwr 1.32, default simulated SuperNodes changed from 10 to 2.\n",
    f"{G}INFO {R}:      Federation `@none/default` (3 simulated SuperNodes)\n",
    f"{G}INFO {R}:      To change federation size, use the following command:\n",
    f"{G}INFO {R}:      \tflwr federation simulation-config @none/default <superlink> "
    "--num-supernodes <N>\n",
    "2026-12-01 09:29:15,066 INFO server.ground: teacher test accuracy 0.3500\n",
    f"{G}INFO {R}:      \n",
    f"{G}INFO {R}:      [ROUND 1/2]\n",
    f"{RAY_WORKER}:2051: FutureWarning: "
    "Tip: In future versions of Ray, Ray will no longer override accelerator visible devices "
    "env var if num_gpus=0 or num_gpus=None (default). To enable this behavior and turn off "
    "this error message, set RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=0\n",
    "  warnings.warn(\n",
    "2026-12-01 09:29:21,068 INFO server.strategy: round 1: 3 clients selected\n",
    f"{C}(ClientAppActor pid=7605){R} {Y}WARNING {R}:   Manually terminating ClientAppActor\n",
    f"{C}(ClientAppActor pid=7606){R} student file unreadable, starting from scratch\r\n",
]


def test_flower_stream_becomes_plain_relevant_lines() -> None:
    lines = list(clean_lines(STREAMED))
    assert lines == [
        "Using SuperLink: skydistill (127.0.0.1:40731)",
        "INFO :      Starting logstream for run_id `2528606064632296995`",
        "INFO :      Starting Flower Simulation",
        "INFO :      Federation `@none/default` (3 simulated SuperNodes)",
        "2026-12-01 09:29:15,066 INFO server.ground: teacher test accuracy 0.3500",
        "INFO :      [ROUND 1/2]",
        "2026-12-01 09:29:21,068 INFO server.strategy: round 1: 3 clients selected",
        "(ClientAppActor pid=7606) student file unreadable, starting from scratch",
    ]
    assert not any("\x1b" in line or "\r" in line for line in lines)


def test_a_warning_source_line_is_kept_after_a_kept_warning() -> None:
    kept = ["x.py:1: UserWarning: something that matters\n", "  warnings.warn(\n"]
    assert list(clean_lines(kept)) == [line.rstrip() for line in kept]


def test_only_advice_and_spacers_are_irrelevant() -> None:
    assert is_irrelevant(clean_line(STREAMED[3]))
    assert is_irrelevant("INFO :      ")
    assert not is_irrelevant("INFO :      Federation `@none/default` (3 simulated SuperNodes)")
    assert not is_irrelevant("")  # a blank line of a traceback or a client's output stays


def test_pump_copies_a_real_pipe_into_the_file(tmp_path: Path) -> None:
    script = "import sys\n" + "".join(
        f"sys.stdout.write({line!r}); sys.stdout.flush()\n" for line in STREAMED
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    path = tmp_path / "run.log"
    path.write_text("earlier run\n")  # appended to, as a resumed run's log
    thread = pump(proc.stdout, path)
    assert proc.wait(timeout=60) == 0
    thread.join(timeout=10)
    assert not thread.is_alive()
    lines = path.read_text().splitlines()
    assert lines == ["earlier run", *clean_lines(STREAMED)]
    assert len(lines) == len(set(lines))  # one line per event


def test_log_stream_keeps_the_last_lines_and_stops_a_follower_that_hangs(tmp_path: Path) -> None:
    done = LogStream(
        [sys.executable, "-c", "print('\\x1b[92mINFO \\x1b[0m:  last')"], {}, tmp_path / "a.log"
    )
    done.proc.wait(timeout=60)
    assert done.ended()  # what tells run_federation to ask for the run's status
    done.terminate(grace=30.0)  # exits by itself: its final line is kept
    assert (tmp_path / "a.log").read_text() == "INFO :  last\n"
    script = "import sys, time; print('following', flush=True); time.sleep(600)"
    hanging = LogStream([sys.executable, "-c", script], {}, tmp_path / "b.log")
    assert not hanging.ended()
    started = time.monotonic()
    hanging.terminate(grace=0.5)
    assert time.monotonic() - started < 10.0
    assert hanging.proc.returncode is not None
    assert (tmp_path / "b.log").read_text() == "following\n"
