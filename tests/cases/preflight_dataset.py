"""Good/bad cases for the dataset checks (DS001-DS004), with real parquet shards."""

from preflight.testing import Scenario, bad, good

ENV = {"HOME": "{tmp}/home"}
# a tiny plan: d2, 10 iterations x 524,288 tokens -> 1 train shard + 1 val shard
TINY = (
    "#!/bin/bash\n#SBATCH --gres=gpu:1\nset -e\n"
    "torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=2 --num_iterations=10\n"
)
D20 = "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -e\ntorchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"


def shard(rows: int = 2500, column: str = "text"):
    def write(path):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({column: [f"document {i} " * 8 for i in range(rows)]})
        pq.write_table(
            table, path, row_group_size=1024, compression="zstd", use_dictionary=False, write_statistics=False
        )

    return write


def truncated(path):
    shard()(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def shards(*indices, base="base/base_data"):
    return {f"{base}/shard_{i:05d}.parquet": shard() for i in indices}


CFG = {"base-dir": "{tmp}/base"}


@bad("shards-insufficient")
def _():
    return Scenario(script=D20, env=ENV, config=CFG, files=shards(0, 1, 2))


@good("shards-insufficient")
def _():
    return Scenario(script=TINY, env=ENV, config=CFG, files=shards(0, 1))


@bad("shard-corrupt")
def _():
    files = shards(0, 1)
    files["base/base_data/shard_00002.parquet"] = truncated
    files["base/base_data/shard_00003.parquet"] = b""
    files["base/base_data/shard_00004.parquet"] = b"PAR1 this is not parquet at all PAR1"
    files["base/base_data/shard_00005.parquet"] = shard(column="content")
    return Scenario(script=TINY, env=ENV, config=CFG, files=files)


@good("shard-corrupt")
def _():
    return Scenario(script=TINY, env=ENV, config=CFG, files=shards(0, 1, 2))


@bad("shard-partial-download")
def _():
    files = shards(0, 1)
    files["base/base_data/shard_00002.parquet.tmp"] = b"PAR1partial"
    return Scenario(script=TINY, env=ENV, config=CFG, files=files)


@good("shard-partial-download")
def _():
    return Scenario(script=TINY, env=ENV, config=CFG, files=shards(0, 1))


@bad("shard-gap")
def _():
    return Scenario(script=TINY, env=ENV, config=CFG, files=shards(0, 1, 3, 4))


@good("shard-gap")
def _():
    return Scenario(script=TINY, env=ENV, config=CFG, files=shards(0, 1, 2, 3))
