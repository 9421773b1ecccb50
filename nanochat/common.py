"""
Common utilities for nanochat: base dir, printing, distributed init, device detection,
peak FLOPs, atomic file writes and stop-signal handling.
"""

import datetime
import functools
import importlib
import logging
import os
import re

import torch
import torch.distributed as dist

from nanochat import stopsignal

# -----------------------------------------------------------------------------
# logging: classic format, "<time> - <name> - <level> - <message>"

logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
logger = logging.getLogger("nanochat.common")


@functools.cache
def triton_module(name):
    """nanochat.<name>, a module of Triton kernels, or None where Triton is missing (CPU-only torch builds)."""
    try:
        return importlib.import_module(f"nanochat.{name}")
    except ImportError:
        return None


@functools.cache
def _cuda_capability(index):
    return torch.cuda.get_device_capability(index)


def nvidia_capability(device):
    """(major, minor) of an NVIDIA GPU, else None (CPU, ROCm): where the Triton kernels' PTX can run."""
    if device.type != "cuda" or not torch.version.cuda:
        return None
    return _cuda_capability(device.index if device.index is not None else torch.cuda.current_device())


def get_base_dir():
    """$NANOCHAT_BASE_DIR if set and non-empty, else ~/.cache/nanochat. Always created."""
    base_dir = os.environ.get("NANOCHAT_BASE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "nanochat")
    os.makedirs(base_dir, exist_ok=True)
    return base_dir


def print0(s="", **kwargs):
    """print only on rank 0"""
    if int(os.environ.get("RANK", 0)) == 0:
        print(s, **kwargs, flush=True)


def print_fingerprint():
    """First line of every entry point: lets postflight recognise a bundled-trainer log from the log alone."""
    print0("nanochat (bundled with nanochat-preflight)")


def print_banner():
    banner = r"""
                                                   █████                 █████
                                                  ░░███                 ░░███
 ████████    ██████   ████████    ██████   ██████  ░███████    ██████   ███████
░░███░░███  ░░░░░███ ░░███░░███  ███░░███ ███░░███ ░███░░███  ░░░░░███ ░░░███░
 ░███ ░███   ███████  ░███ ░███ ░███ ░███░███ ░░░  ░███ ░███   ███████   ░███
 ░███ ░███  ███░░███  ░███ ░███ ░███ ░███░███  ███ ░███ ░███  ███░░███   ░███ ███
 ████ █████░░████████ ████ █████░░██████ ░░██████  ████ █████░░████████  ░░█████
░░░░ ░░░░░  ░░░░░░░░ ░░░░ ░░░░░  ░░░░░░   ░░░░░░  ░░░░ ░░░░░  ░░░░░░░░    ░░░░░
"""
    print0(banner)


# -----------------------------------------------------------------------------
# distributed + device


def is_ddp():
    # torchrun sets all three; DDP is active only if all of them are present (classic rule)
    return all(k in os.environ for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))


def get_dist_info():
    if is_ddp():
        return True, int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    return False, 0, 0, 1


def autodetect_device_type():
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    print0(f"Autodetected device type: {device_type}")
    return device_type


def compute_init(device_type="cuda"):
    """Seeds, precision, and (under torchrun) the process group. Returns ddp, rank, local_rank, world_size, device."""
    assert device_type in ("cuda", "cpu"), f"Invalid device type: {device_type} (expected cuda or cpu)"
    if device_type == "cuda":
        assert torch.cuda.is_available(), "device_type=cuda but CUDA is not available; use --device_type=cpu"
    torch.manual_seed(42)
    if device_type == "cuda":
        torch.cuda.manual_seed(42)
        torch.set_float32_matmul_precision("high")  # tf32 for the remaining fp32 matmuls
    ddp, rank, local_rank, world_size = get_dist_info()
    if ddp and device_type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl", device_id=device)
        dist.barrier()
    elif ddp:
        device = torch.device("cpu")
        dist.init_process_group(backend="gloo")
        dist.barrier()
    else:
        device = torch.device(device_type)
    if rank == 0:
        logger.info(f"Distributed world size: {world_size}")
    return ddp, rank, local_rank, world_size, device


def compute_cleanup():
    if is_ddp() and dist.is_initialized():
        if dist.get_backend() == "gloo":
            # a rank that tears down while another is still busy (rank 0 writing the report) closes the
            # peer's gloo connection under it, which aborts that process (SIGABRT); meet first, briefly
            try:
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=120))
            except RuntimeError:  # a peer that died or never came: nothing left to wait for
                pass
        dist.destroy_process_group()


class DummyWandb:
    """Stands in for a wandb run when run == "dummy" (or on non-master ranks): logging becomes a no-op, nothing else changes."""

    def log(self, *args, **kwargs):
        pass

    def finish(self):
        pass


def init_wandb(run, master_process, project, config):
    """run == "dummy" disables wandb and nothing else. wandb is imported only when a named run asks for it."""
    if run == "dummy" or not master_process:
        return DummyWandb()
    try:
        import wandb
    except ImportError:
        raise SystemExit(
            f"--run={run} asks for wandb logging, but wandb is not installed. "
            f"Install it (pip install wandb) or use --run=dummy to disable wandb logging."
        ) from None
    return wandb.init(project=project, name=run, config=config)


# -----------------------------------------------------------------------------
# peak FLOPs per GPU (bf16 dense). MFU in the per-step log uses 989e12 regardless, as classic nanochat does.

PEAK_FLOPS = [
    (r"H200", 989e12),
    (r"H100", 989e12),
    (r"H800", 989e12),
    (r"GH200", 989e12),
    (r"B200", 2250e12),
    (r"A100", 312e12),
    (r"A800", 312e12),
    (r"L40S", 362e12),
    (r"A6000", 155e12),
    (r"4090", 165e12),
    (r"V100", 125e12),
]
CLASSIC_PEAK_FLOPS = 989e12  # H100 SXM bf16 dense, the constant classic nanochat uses for MFU


def get_peak_flops(device_name):
    for pattern, flops in PEAK_FLOPS:
        if re.search(pattern, device_name, re.IGNORECASE):
            return flops
    return float("nan")


# -----------------------------------------------------------------------------
# atomic writes: write a temp file in the same dir, fsync, os.replace, fsync the dir


def _fsync_dir(dirpath):
    try:
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass  # some filesystems do not allow fsync on a directory


def atomic_write(path, write_fn, mode="wb"):
    """write_fn(f) writes the content; the file appears at `path` complete or not at all."""
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # a full disk, a kill: never leave the half-written temp file taking the space
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, Exception):
            import shutil

            try:
                free = f"{shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free:,} bytes free"
            except OSError:
                free = "free space unknown"
            raise OSError(
                f"saving {path} failed ({free} on its filesystem; disk full?): {type(e).__name__}: {e}"
            ) from e
        raise
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def atomic_torch_save(obj, path):
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text), mode="w")


# -----------------------------------------------------------------------------
# stop signals (handlers in nanochat.stopsignal, installed before torch is imported)


def stop_requested(ddp=False, device=None):
    """The signal name if a stop was requested (on any rank, under DDP), else None."""
    flag = stopsignal.requested() is not None
    if ddp:
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        flag = bool(t.item())
    if not flag:
        return None
    return stopsignal.requested() or "SIGTERM"


# -----------------------------------------------------------------------------


def all_reduce_gradients(model, world_size):
    """Average the gradients over ranks (one flat buffer per dtype). Called once per optimizer step, after
    gradient accumulation and before clipping, so clipping and both optimizers see the global gradient."""
    if world_size <= 1:
        return
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    by_dtype = {}
    for p in model.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    for grads in by_dtype.values():
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)  # gloo has no AVG
        flat.div_(world_size)
        for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=False):
            g.copy_(synced)
