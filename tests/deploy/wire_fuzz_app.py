"""TEST ONLY: a ClientApp that sends malformed replies, for tests/deploy/test_resilience.py.

Never part of a deployment: the product's ClientApp is ``clients.app:app``. The wire fuzz test
packs a Flower app whose ``clientapp`` component is this module's ``app`` (see
``fuzz_app_folder``) and runs it through a real SuperLink on real agents. A node whose name
(the agent's ``--name``) is ``fuzzer-K`` answers round R with case ``CASES[(R - 1) * FUZZERS +
K]``, crafted at the record level as a hostile ClientApp could; every other node delegates to
the honest ClientApp. The test expects each case counted under ``REASON[case]`` by the server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp

from common import keys
from common.codec import PROBS, SCALE, Codec, encode

FUZZERS = 3  # agents named fuzzer-0 .. fuzzer-2
PREFIX = "fuzzer-"
# What each malformed reply is, and the rejection reason the server must count it under
# (None: the ClientApp fails, counted in clients_failed). Three per round, three rounds: each
# round a ClientApp process per node starts at once, and Flower gives each 30 s to do so.
# EXTRA: cases malformed() builds too, left out of the wire test to keep it short; every
# case's reason is also checked without a SuperLink (tests/server/test_replies.py).
REASON: dict[str, str | None] = {
    "columns": "codec",  # (n, C + 1): a wrong shape
    "dtype": "codec",  # float64 where int8 travels
    "nan": "codec",  # NaN in the int8 scale
    "inf": "codec",  # Inf in the int8 scale
    "oversized": "oversized",  # 1 MB of predictions, far above the payload cap
    "missing-record": "keys",  # no metrics record
    "extra-record": "keys",  # a student's weights beside the predictions
    "other-indices": "indices",  # an index array naming tiles it was not asked
    "corrupt-bytes": "payload",  # an array whose bytes do not deserialise
}
EXTRA: dict[str, str | None] = {"more-tiles": "indices", "accuracy": "metrics", "raises": None}
CASES = tuple(REASON)
assert len(CASES) % FUZZERS == 0
ROUNDS = len(CASES) // FUZZERS
OVERSIZED_BYTES = 1 << 20

app = ClientApp()


def case_of(node_name: str, server_round: int) -> str | None:
    """The case node ``node_name`` sends in ``server_round`` (None: an honest node)."""
    if not node_name.startswith(PREFIX):
        return None
    index = (server_round - 1) * FUZZERS + int(node_name[len(PREFIX) :])
    return CASES[index % len(CASES)]


def _node_name(context: Context) -> str:
    return str(context.node_config.get(keys.NODE_NAME, ""))


def _server_round(msg: Message) -> int:
    config = msg.content[keys.TRAIN_CONFIG]
    assert isinstance(config, ConfigRecord)
    return int(config[keys.SERVER_ROUND])  # type: ignore[arg-type]


def _asked(msg: Message) -> tuple[int, int]:
    """(tiles asked, classes) of a train message (its int8 soft targets are (n, C))."""
    targets = msg.content[keys.TARGETS]
    assert isinstance(targets, ArrayRecord)
    return targets[keys.INDICES].numpy().shape[0], targets[PROBS].numpy().shape[1]


def malformed(case: str, asked: int, classes: int, role: str) -> RecordDict:
    """The reply of ``case`` for ``asked`` tiles of ``classes`` classes."""
    payload = encode(np.full((asked, classes), 1.0 / classes, np.float32), Codec.INT8)
    metrics: dict[str, int | float] = {keys.NUM_EXAMPLES: 10, keys.TRAIN_LOSS: 0.5}
    arrays: dict[str, Array] = {}
    if case == "columns":
        payload[PROBS] = np.ones((asked, classes + 1), np.int8)
    elif case == "dtype":
        payload[PROBS] = payload[PROBS].astype(np.float64)
    elif case in ("nan", "inf"):
        payload[SCALE][0] = np.nan if case == "nan" else np.inf
    elif case == "oversized":
        payload[PROBS] = np.ones((asked, OVERSIZED_BYTES // asked), np.int8)
    elif case == "more-tiles":
        payload = {k: np.concatenate([v, v[:3]]) for k, v in payload.items()}
    elif case == "other-indices":
        payload[keys.INDICES] = np.arange(asked, dtype=np.uint16) + 1000
    elif case == "corrupt-bytes":
        arrays[PROBS] = Array(
            dtype="int8", shape=(asked, classes), stype="numpy.ndarray", data=b"\x93NUMPY junk"
        )
    elif case == "accuracy":
        metrics[keys.LOCAL_ACCURACY] = 7.0
    arrays = {**{k: Array(v) for k, v in payload.items()}, **arrays}
    content: dict[str, ArrayRecord | MetricRecord | ConfigRecord] = {
        keys.PREDICTIONS: ArrayRecord(arrays),
        keys.METRICS: MetricRecord(metrics),
        keys.INFO: ConfigRecord({keys.ROLE: role}),
    }
    if case == "missing-record":
        del content[keys.METRICS]
    elif case == "extra-record":
        content["weights"] = ArrayRecord({"conv.weight": Array(np.zeros((8, 3, 3, 3), np.float32))})
    return RecordDict(content)


@app.train()
def train(msg: Message, context: Context) -> Message:
    case = case_of(_node_name(context), _server_round(msg))
    if case is None:
        from clients import app as honest  # torch: only honest nodes load it

        return honest.train(msg, context)
    if case == "raises":
        raise RuntimeError("wire fuzz: this ClientApp fails on purpose")
    asked, classes = _asked(msg)
    role = str(context.node_config.get(keys.NODE_ROLE, "drone"))
    return Message(malformed(case, asked, classes, role), reply_to=msg)


@app.query()
def query(msg: Message, context: Context) -> Message:
    from clients import app as honest

    return honest.query(msg, context)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    from clients import app as honest

    return honest.evaluate(msg, context)


def fuzz_app_folder(project: Path, folder: Path) -> Path:
    """A Flower app folder whose ClientApp is this module's ``app``: the project's
    pyproject.toml with its ``clientapp`` component swapped, and this module. The ServerApp
    and the honest ClientApp are imported from the installed skydistill, as in every run."""
    text = (project / "pyproject.toml").read_text()
    honest = 'clientapp = "clients.app:app"'
    assert honest in text, "pyproject.toml no longer names clients.app:app as its ClientApp"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(
        text.replace(honest, f'clientapp = "tests.deploy.{Path(__file__).stem}:app"')
    )
    package = folder / "tests" / "deploy"
    package.mkdir(parents=True, exist_ok=True)
    (folder / "tests" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    shutil.copyfile(__file__, package / Path(__file__).name)
    return folder
