"""Log text in the shapes real nanochat jobs print (split .out/.err, 8-rank tracebacks, torchrun's
failure summary, fork echo headers). Every shape follows the facts of real runs: the exact
messages of HF ``datasets`` offline failures, torchrun's ``ChildFailedError`` block, Python's
chained tracebacks."""

from __future__ import annotations

import json

SEED_OUT = """\
[3/5] Midtraining (teaching conversation format)...
Overriding: run = dummy
Autodetected device type: cuda
Autodetected device type: cuda

[4/5] Supervised finetuning...
Overriding: run = dummy
Autodetected device type: cuda
Autodetected device type: cuda
"""

TORCHRUN_START = [
    "W1014 12:00:01.123000 140 torch/distributed/run.py:793] ",
    "W1014 12:00:01.123000 140 torch/distributed/run.py:793] *****************************************",
    "W1014 12:00:01.123000 140 torch/distributed/run.py:793] Setting OMP_NUM_THREADS environment variable for each "
    "process to be 1 in default, to avoid your system being overloaded, please further tune the variable for optimal "
    "performance in your application as needed. ",
    "W1014 12:00:01.123000 140 torch/distributed/run.py:793] *****************************************",
]

SITE = "/home/u/nanochat/.venv/lib/python3.10/site-packages"


def hf_offline_chain(script: str, dataset: str, config: str | None = None) -> list[list[str]]:
    """The exception chain of ``load_dataset`` on an offline node (datasets 3.x/4.x): the hub's
    LocalEntryNotFoundError, then the ConnectionError (or the cache-miss ValueError for a config)."""
    first = [
        "Traceback (most recent call last):",
        f'  File "{SITE}/datasets/load.py", line 1474, in dataset_module_factory',
        "    ).get_module()",
        f'  File "{SITE}/huggingface_hub/file_download.py", line 1484, in _raise_on_head_call_error',
        "    raise LocalEntryNotFoundError(",
        "huggingface_hub.errors.LocalEntryNotFoundError: An error happened while trying to locate the file on the "
        "Hub and we cannot find the requested files in the local cache.",
    ]
    top = [
        "Traceback (most recent call last):",
        '  File "<frozen runpy>", line 198, in _run_module_as_main',
        '  File "<frozen runpy>", line 88, in _run_code',
        f'  File "/home/u/nanochat/scripts/{script}.py", line 96, in <module>',
        "    train_ds = TaskMixture([",
        '  File "/home/u/nanochat/tasks/common.py", line 20, in __init__',
        f'    self.ds = load_dataset("{dataset}", split=split)',
        f'  File "{SITE}/datasets/load.py", line 1519, in dataset_module_factory',
        "    raise ConnectionError(f\"Couldn't reach '{path}' on the Hub ({e.__class__.__name__})\") from e",
    ]
    if config:
        top.append(f"ValueError: Couldn't find cache for {dataset} for config '{config}'")
    else:
        top.append(f"ConnectionError: Couldn't reach '{dataset}' on the Hub (LocalEntryNotFoundError)")
    return [first, top]


def missing_ckpt(script: str, dirname: str) -> list[list[str]]:
    return [
        [
            "Traceback (most recent call last):",
            f'  File "/home/u/nanochat/scripts/{script}.py", line 211, in <module>',
            '    model, tokenizer, meta = load_model(args.source, device, phase="eval")',
            '  File "/home/u/nanochat/nanochat/checkpoint_manager.py", line 139, in find_largest_model',
            "    model_tags = [f for f in os.listdir(checkpoint_dir)]",
            f"FileNotFoundError: [Errno 2] No such file or directory: '/scratch/u/nanochat/{dirname}'",
        ]
    ]


def ranked(chain: list[list[str]], ranks: int = 8) -> list[str]:
    """Every rank prints the whole chain with its ``[rankN]:`` prefix (torch >= 2.2), interleaved
    line by line the way ranks writing to one stderr interleave."""
    blocks = []
    for r in range(ranks):
        lines: list[str] = []
        for i, tb in enumerate(chain):
            if i:
                lines += ["", "The above exception was the direct cause of the following exception:", ""]
            lines += tb
        blocks.append([f"[rank{r}]: {x}" if x else f"[rank{r}]:" for x in lines])
    out = []
    for i in range(max(len(b) for b in blocks)):
        for b in blocks:
            if i < len(b):
                out.append(b[i])
    return out


def child_failed(module: str, exitcode: int = 1) -> list[str]:
    return [
        "E1014 12:00:05.001000 140 torch/distributed/elastic/multiprocessing/api.py:869] failed (exitcode: 1) "
        "local_rank: 0 (pid: 141) of binary: /home/u/nanochat/.venv/bin/python3",
        "Traceback (most recent call last):",
        '  File "/home/u/nanochat/.venv/bin/torchrun", line 10, in <module>',
        "    sys.exit(main())",
        f'  File "{SITE}/torch/distributed/launcher/api.py", line 270, in launch_agent',
        "    raise ChildFailedError(",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
        "============================================================",
        f"{module} FAILED",
        "------------------------------------------------------------",
        "Failures:",
        "  <NO_OTHER_FAILURES>",
        "------------------------------------------------------------",
        "Root Cause (first observed failure):",
        "[0]:",
        "  time      : 2025-10-14_12:00:05",
        "  host      : gpu01",
        "  rank      : 0 (local_rank: 0)",
        f"  exitcode  : {exitcode} (pid: 141)",
        "  error_file: <N/A>",
        "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html",
        "============================================================",
    ]


def seed_err() -> str:
    """The .err of the seed job: mid and SFT die loading their HF datasets offline; the two
    chat_eval runs cannot find the checkpoints that were never written."""
    lines: list[str] = []
    for module, chain in (
        ("scripts.mid_train", hf_offline_chain("mid_train", "HuggingFaceTB/smol-smoltalk")),
        ("scripts.chat_eval", missing_ckpt("chat_eval", "mid_checkpoints")),
        ("scripts.chat_sft", hf_offline_chain("chat_sft", "allenai/ai2_arc", "ARC-Easy")),
        ("scripts.chat_eval", missing_ckpt("chat_eval", "chatsft_checkpoints")),
    ):
        lines += TORCHRUN_START + ranked(chain) + child_failed(module)
    return "\n".join(lines) + "\n"


def tok_eval_offline() -> str:
    """A classic run's tok_eval dying offline: tiktoken's download raises through requests and
    urllib3, a chain of three exceptions (the real shape gave 4 findings before folding)."""
    chain = [
        [
            "Traceback (most recent call last):",
            f'  File "{SITE}/urllib3/connection.py", line 198, in _new_conn',
            "    sock = connection.create_connection(",
            "socket.gaierror: [Errno -3] Temporary failure in name resolution",
        ],
        [
            "Traceback (most recent call last):",
            f'  File "{SITE}/urllib3/connectionpool.py", line 787, in urlopen',
            "    response = self._make_request(",
            "urllib3.exceptions.NameResolutionError: <urllib3.connection.HTTPSConnection object at 0x7f>: Failed to "
            "resolve 'openaipublic.blob.core.windows.net' ([Errno -3] Temporary failure in name resolution)",
        ],
        [
            "Traceback (most recent call last):",
            '  File "/home/u/nanochat/scripts/tok_eval.py", line 159, in <module>',
            '    tokenizer = get_tokenizer("gpt2")',
            f'  File "{SITE}/tiktoken_ext/openai_public.py", line 11, in gpt2',
            "    mergeable_ranks = data_gym_to_mergeable_bpe_ranks(",
            f'  File "{SITE}/requests/adapters.py", line 700, in send',
            "    raise ConnectionError(e, request=request)",
            "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='openaipublic.blob.core.windows.net', "
            "port=443): Max retries exceeded with url: /gpt-2/encodings/main/vocab.bpe",
        ],
    ]
    lines = [
        "max_chars: 2,000,000,000",
        "Saved tokenizer encoding to /scratch/u/nanochat/tokenizer/tokenizer.pkl",
        "Saved token_bytes to /scratch/u/nanochat/tokenizer/token_bytes.pt",
    ]
    for i, tb in enumerate(chain):
        if i:
            lines += ["", "During handling of the above exception, another exception occurred:", ""]
        lines += tb
    return "\n".join(lines) + "\n"


# -- current era (Era D): no Overriding lines, no report; every script opens with the ASCII banner ----------
BANNER = [
    "                                                       █████                █████",
    "                                                      ░░███                ░░███",
    " ████████    ██████   ████████    ██████   ██████   ░███████    ██████   ███████",
    "░░███░░███  ░░░░░███ ░░███░░███  ███░░███ ███░░███  ░███░░███  ░░░░░███ ░░░███░",
    " ░███ ░███   ███████  ░███ ░███ ░███ ░███░███ ░░░   ░███ ░███   ███████   ░███",
    " ░███ ░███  ███░░███  ░███ ░███ ░███ ░███░███  ███  ░███ ░███  ███░░███   ░███ ███",
    " ████ █████░░████████ ████ █████░░██████ ░░██████   ████ █████░░████████  ░░█████",
    "░░░░ ░░░░░  ░░░░░░░░ ░░░░ ░░░░░  ░░░░░░   ░░░░░░   ░░░░ ░░░░░  ░░░░░░░░    ░░░░░",
]


def _log(name: str, msg: str) -> str:
    return f"2026-07-03 08:00:00,000 - {name} - \x1b[32m\x1b[1mINFO\x1b[0m - {msg}"


def current_start(world: int = 8, device: str = "cuda") -> list[str]:
    return [
        *BANNER,
        f"Autodetected device type: {device}",
        _log("nanochat.common", f"Distributed world size: {world}"),
        "GPU: NVIDIA H100 80GB HBM3 | Peak FLOPS (BF16): 9.89e+14",
        "COMPUTE_DTYPE: torch.bfloat16 (auto-detected: CUDA SM 90 (bf16 supported))",
    ]


def current_base(base: str, total: int, steps: int | None = None, depth: int = 2) -> list[str]:
    """base_train at HEAD: Model config JSON, bf16_mfu and `epoch: N pq: X rg: Y` step fields,
    eta after step 10; it saves only at the end."""
    last = total if steps is None else steps
    out = current_start() + [
        "✓ Using Flash Attention 3: efficient, new and awesome.",
        "Model config:",
        json.dumps(
            {
                "sequence_len": 64,
                "vocab_size": 265,
                "n_layer": depth,
                "n_head": 1,
                "n_kv_head": 1,
                "n_embd": depth * 64,
                "window_pattern": "SSSL",
            },
            indent=2,
        ),
        "Parameter counts:",
        "total                    : 917,504",
        f"Calculated number of iterations from target data:param ratio: {total:,}",
    ]
    for s in range(last):
        eta = f" | eta: {0.1 * (total - s):.1f}m" if s > 10 else ""
        out.append(
            f"step {s:05d}/{total:05d} ({100 * s / total:.2f}%) | loss: {3.5 - s * 0.01:.6f} | lrm: 1.00 | "
            f"dt: 480.12ms | tok/sec: 1,092,000 | bf16_mfu: 48.12 | epoch: 1 pq: {s // 8} rg: {s % 8} | "
            f"total time: 0.50m{eta}"
        )
        if s % 250 == 0:
            out.append(f"Step {s:05d} | Validation bpb: 1.234567")
    if steps is None:
        d = f"{base}/base_checkpoints/d{depth}"
        out += [
            f"Step {total:05d} | Validation bpb: 1.234567",
            "Peak memory usage: 75123.45MiB",
            "Total training time: 180.12m",
            "Minimum validation bpb: 1.234567",
            _log("nanochat.checkpoint_manager", f"Saved model parameters to: {d}/model_{total:06d}.pt"),
            _log("nanochat.checkpoint_manager", f"Saved metadata to: {d}/meta_{total:06d}.json"),
        ]
    return out


def current_sft(base: str, steps: int, depth: int = 2) -> list[str]:
    """chat_sft at HEAD: mid-style step lines without /total that can pass 100%, per-rank optim."""
    out = current_start() + [
        _log("nanochat.checkpoint_manager", f"Loading model from {base}/base_checkpoints/d{depth} with step 20")
    ]
    for s in range(steps):
        out.append(
            f"step {s:05d} ({100 * s / (steps - 2):.2f}%) | loss: {2.5 - s * 0.01:.6f} | lrm: 1.00 | "
            f"dt: 210.00ms | tok/sec: 500,000 | bf16_mfu: 30.00 | epoch: 1 | total time: 0.10m"
        )
    d = f"{base}/chatsft_checkpoints/d{depth}"
    out += [
        "Peak memory usage: 40000.00MiB",
        "Total training time: 12.00m",
        _log("nanochat.checkpoint_manager", f"Saved model parameters to: {d}/model_{steps:06d}.pt"),
        _log("nanochat.checkpoint_manager", f"Saved metadata to: {d}/meta_{steps:06d}.json"),
    ]
    return out


def current_sft_offline() -> list[list[str]]:
    """chat_sft at HEAD (a5a3a33 and later) on an offline node: tasks/common.py's load_hub_dataset lists the
    dataset's parquet export with urllib; the frames and source lines are upstream's (scripts/chat_sft.py:163,
    tasks/smoltalk.py:15, tasks/common.py:64), the exception is what Python's urllib raises without DNS."""
    return [
        [
            "Traceback (most recent call last):",
            '  File "<frozen runpy>", line 198, in _run_module_as_main',
            '  File "<frozen runpy>", line 88, in _run_code',
            '  File "/home/u/nanochat/scripts/chat_sft.py", line 163, in <module>',
            '    SmolTalk(split="train"), # 460K rows of general conversations',
            "    ^^^^^^^^^^^^^^^^^^^^^^^^",
            '  File "/home/u/nanochat/tasks/smoltalk.py", line 15, in __init__',
            '    self.ds = load_hub_dataset("HuggingFaceTB/smol-smoltalk", split=split).shuffle(seed=42)',
            "              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
            '  File "/home/u/nanochat/tasks/common.py", line 64, in load_hub_dataset',
            "    with urllib.request.urlopen(listing_url) as response:",
            "         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
            '  File "/usr/lib/python3.10/urllib/request.py", line 216, in urlopen',
            "    return opener.open(url, data, timeout)",
            '  File "/usr/lib/python3.10/urllib/request.py", line 1351, in do_open',
            "    raise URLError(err)",
            "urllib.error.URLError: <urlopen error [Errno -2] Name or service not known>",
        ]
    ]


def no_process_group(script: str = "chat_sft") -> list[list[str]]:
    """torchrun on a CPU node: the script skips init_process_group on CPU and a collective fails."""
    return [
        [
            "Traceback (most recent call last):",
            f'  File "/home/u/nanochat/scripts/{script}.py", line 160, in <module>',
            "    dist.all_reduce(num_tokens, op=dist.ReduceOp.SUM)",
            f'  File "{SITE}/torch/distributed/distributed_c10d.py", line 1203, in _get_default_group',
            "    raise ValueError(",
            "ValueError: Default process group has not been initialized, please make sure to call init_process_group.",
        ]
    ]
