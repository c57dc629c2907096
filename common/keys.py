"""Record keys shared by the ServerApp and the ClientApp (one place, no string literals)."""

from __future__ import annotations

# Server -> client (train message)
TARGETS = "targets"  # ArrayRecord: encoded soft targets + reference indices
INDICES = "indices"  # array inside TARGETS: reference indices (uint16 if they fit), (n,)
TRAIN_CONFIG = "config"  # ConfigRecord
# ArrayRecord (optional, statistics mode): the head the ground fitted for each architecture,
# "<arch>.weight" (C, D) and "<arch>.bias" (C,), float16; the client deploys its backbone with it
HEADS = "heads"

# Keys inside TRAIN_CONFIG
SERVER_ROUND = "server-round"
TEMPERATURE = "temperature"
KD_WEIGHT = "kd-weight"
CODEC = "codec"
TOPK = "topk"  # k of the top-k codec
NORM_MEAN = "norm-mean"
NORM_STD = "norm-std"
SEND_STATISTICS = "send-statistics"  # int 1: reply with class statistics of the shared backbone

# FedAvg baseline (train message: Flower's "arrays" + "config"; reply: "arrays" + METRICS)
FEDAVG_ARRAYS = "arrays"
FEDAVG_OPTIMIZER = "optimizer"
FEDAVG_LR = "learning-rate"
FEDAVG_EPOCHS = "local-epochs"
FREEZE_BN = "freeze-bn"
PROXIMAL_MU = "proximal-mu"  # set by Flower's FedProx in the train config

# Client -> server (train reply)
PREDICTIONS = "predictions"  # ArrayRecord: encoded soft predictions on exactly INDICES
METRICS = "metrics"  # MetricRecord
INFO = "info"  # ConfigRecord
# ArrayRecord (optional, when SEND_STATISTICS): per-class counts, feature sums and scatter of the
# client's training tiles through the shared frozen backbone (common/class_stats.py)
CLASS_STATISTICS = "statistics"

# Evaluate message (server -> client): a ConfigRecord under TRAIN_CONFIG with SERVER_ROUND,
# NORM_MEAN and NORM_STD; the reply holds METRICS (TEST_ACCURACY, NUM_EXAMPLES) and INFO.
TEST_ACCURACY = "test-accuracy"

# Keys inside METRICS
NUM_EXAMPLES = "num-examples"
TRAIN_LOSS = "train-loss"
LOCAL_ACCURACY = "local-accuracy"
CLASS_COUNTS = "class-counts"  # list[int]: the client's training tiles per class
PAYLOAD_BYTES = "payload-bytes"
# What the round cost the client: samples through a training step (forward and backward), and
# wall seconds of its train function (without simulated straggler idling)
TRAIN_SAMPLES = "train-samples"
CLIENT_SECONDS = "client-seconds"

# Keys inside INFO
ROLE = "role"
PARTITION_ID = "partition-id"  # in the reply to a QUERY: which simulated client a node is
CLIENT_NAME = "client-name"  # in a train reply: a stable name (keys its trust and statistics)

# Node config (set per SuperNode: `--node-config "role='drone' data-dir='/data'"`)
NODE_ROLE = "role"
NODE_DATA_DIR = "data-dir"
NODE_PARTITION_ID = "partition-id"
NODE_NUM_PARTITIONS = "num-partitions"
NODE_NUM_THREADS = "num-threads"  # torch threads of each local round (default 1)
# Edge agents (`skydistill agent`): a stable name and where the node keeps its students
NODE_NAME = "node-name"
NODE_STATE_DIR = "state-dir"

# report.json: wall seconds of each phase. A round's ``phase_seconds`` (they add up to its
# ``seconds``), in the order they happen:
PHASE_SEND = "send"  # configure_train: sample the nodes, encode K_t, build the train messages
PHASE_CLIENTS = "clients"  # train messages handed to Flower -> the last reply created
PHASE_RECEIVE = "receive"  # the last reply created -> the replies in the server's hands
PHASE_AGGREGATE = "aggregate"  # aggregate_train: validate, aggregate, update the knowledge
PHASE_CLIENT_EVALUATE = "client-evaluate"  # clients score their students (evaluate rounds)
PHASE_DISTIL = "distil"  # the global student learns from K_t+1
PHASE_EVALUATE = "evaluate"  # the global (FedAvg: averaged) model on the test split
PHASE_REFINE = "refine"  # the teacher refined towards K_t+1 and scored (teacher-refine-epochs)
PHASE_CHECKPOINT = "checkpoint"  # OUT/checkpoint.pt written
PHASE_OTHER = "other"  # the rest: Flower's loop between the hooks, bookkeeping
PHASE_TOTAL = "total"
# The run's ``phase_seconds`` (top level): the ground segment's own keys (data, teacher,
# global-student, preinstall-<arch>, as server/ground.py names them), then:
PHASE_FLOWER_START = "flower-start"  # simulate: ground ready -> the ServerApp running
PHASE_SERVER_GROUND = "server-ground"  # simulate: the ServerApp loading the ground again
PHASE_SETUP = "setup"  # strategy, class statistics and heads, node discovery, resumption
PHASE_ROUNDS = "rounds"  # the rounds' seconds, summed
PHASE_FINISH = "finish"  # after the last round until the final report: exporter, student
# PHASE_OTHER and PHASE_TOTAL close it too.
