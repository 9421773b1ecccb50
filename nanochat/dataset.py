"""
Pretraining data: parquet shards with a single `text` column in BASE/base_data/shard_NNNNN.parquet.
The last shard (by name) is the validation split, all others are train (classic rule).

Build the demo corpus locally from text that ships with Python (stdlib docstrings, the Zen of Python):
    python -m nanochat.dataset build --num-shards 4
    python -m nanochat.dataset build --num-shards 8 --chars-per-shard 2000000
Build shards from your own text files (*.txt, *.md, one document per file or per blank-line-separated block):
    python -m nanochat.dataset build --from-text /path/to/dir --num-shards 8
Download FineWeb-EDU shards (needs a network; resumes partial .tmp files, checks each parquet footer):
    python -m nanochat.dataset -n 8
"""

import argparse
import os
import random
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

from nanochat.common import get_base_dir, print_fingerprint

BASE_URL = "https://huggingface.co/datasets/karpathy/fineweb-edu-100b-shuffle/resolve/main"
MAX_SHARD = 1822
ROW_GROUP_SIZE = 1024


def index_to_filename(index):
    return f"shard_{index:05d}.parquet"


def get_data_dir():
    data_dir = os.path.join(get_base_dir(), "base_data")
    os.makedirs(data_dir, exist_ok=True)
    return data_dir


def list_parquet_files(data_dir=None):
    data_dir = get_data_dir() if data_dir is None else data_dir
    return sorted(os.path.join(data_dir, f) for f in os.listdir(data_dir) if f.endswith(".parquet"))


def parquets_iter_batched(split, start=0, step=1):
    """Iterate the `text` column one row group at a time (start/step allow DDP striding)."""
    assert split in ("train", "val"), "split must be 'train' or 'val'"
    paths = list_parquet_files()
    assert len(paths) >= 2, (
        f"Need at least 2 parquet shards (train + val) in {get_data_dir()}, found {len(paths)}. Run: python -m nanochat.dataset build"
    )
    paths = paths[:-1] if split == "train" else paths[-1:]
    for filepath in paths:
        pf = pq.ParquetFile(filepath)
        for rg_idx in range(start, pf.num_row_groups, step):
            yield pf.read_row_group(rg_idx).column("text").to_pylist()


def write_shard(texts, path):
    """Classic shard format: one string column `text`, row groups of 1024, zstd. Written as .tmp, then renamed."""
    table = pa.Table.from_pydict({"text": texts})
    tmp = path + ".tmp"
    pq.write_table(
        table,
        tmp,
        row_group_size=ROW_GROUP_SIZE,
        compression="zstd",
        compression_level=3,
        use_dictionary=False,
        write_statistics=False,
    )
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


# -----------------------------------------------------------------------------
# the local demo corpus: documentation that ships with Python, deterministic, no network

STDLIB_MODULES = """
abc argparse array ast asyncio base64 bisect builtins bz2 calendar cmath codecs collections
collections.abc colorsys concurrent.futures configparser contextlib copy csv dataclasses datetime
decimal difflib dis email enum filecmp fnmatch fractions ftplib functools getopt gettext glob gzip
hashlib heapq hmac html html.parser http http.client http.server imaplib importlib inspect io
ipaddress itertools json keyword linecache locale logging lzma mailbox math mimetypes multiprocessing
numbers operator optparse os os.path pathlib pickle pkgutil platform plistlib poplib pprint profile
pstats queue quopri random re reprlib sched secrets select selectors shelve shlex shutil signal
smtplib socket socketserver sqlite3 ssl stat statistics string struct subprocess symtable sys
sysconfig tabnanny tarfile tempfile textwrap threading time timeit token tokenize trace traceback
types typing unicodedata unittest urllib.parse urllib.request uuid warnings wave weakref xml.dom
xml.etree.ElementTree xml.sax zipfile zipimport zlib
""".split()


def _zen_of_python():
    import codecs
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # `import this` prints the Zen
        import this
    return codecs.decode(this.s, "rot13")


def demo_documents():
    """One document per module / class / function docstring of a fixed list of stdlib modules."""
    import importlib
    import inspect
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated aliases (typing.io, ...) warn when their docs are read
        return _demo_documents(importlib, inspect)


def _demo_documents(importlib, inspect):
    docs = [f"The Zen of Python, by Tim Peters\n\n{_zen_of_python()}"]
    seen = set()
    for modname in STDLIB_MODULES:
        try:
            mod = importlib.import_module(modname)
        except Exception:
            continue  # a module missing from this Python build
        doc = inspect.getdoc(mod)
        if doc:
            docs.append(f"Module {modname}\n\n{doc}")
        for name in sorted(dir(mod)):
            if name.startswith("_"):
                continue
            obj = getattr(mod, name, None)
            if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                continue
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            doc = inspect.getdoc(obj)
            if doc and len(doc) > 40:
                try:
                    sig = str(inspect.signature(obj))
                except (TypeError, ValueError):
                    sig = "(...)"
                docs.append(f"{modname}.{name}{sig}\n\n{doc}")
            if inspect.isclass(obj):
                for mname, member in sorted(vars(obj).items()):
                    if mname.startswith("_"):
                        continue
                    mdoc = inspect.getdoc(member) if callable(member) else None
                    if mdoc and len(mdoc) > 40 and mdoc != doc:
                        docs.append(f"{modname}.{name}.{mname}\n\n{mdoc}")
    return docs


def text_file_documents(text_dir):
    """Documents from *.txt / *.md files: each blank-line-separated block of >= 200 chars, else the whole file."""
    docs = []
    for root, _, files in sorted(os.walk(text_dir)):
        for fname in sorted(files):
            if not fname.endswith((".txt", ".md", ".rst")):
                continue
            with open(os.path.join(root, fname), encoding="utf-8", errors="replace") as f:
                text = f.read()
            blocks = [b.strip() for b in text.split("\n\n") if len(b.strip()) >= 200]
            docs.extend(blocks if blocks else ([text] if text.strip() else []))
    assert docs, f"No text documents found under {text_dir} (looked for *.txt, *.md, *.rst)"
    return docs


def build_shards(docs, num_shards, chars_per_shard=0, seed=42, data_dir=None):
    """Shuffle the documents (seeded) and split them into num_shards shards. With chars_per_shard > 0,
    cycle through reshuffled passes of the documents until every shard holds that many characters."""
    assert num_shards >= 2, "need at least 2 shards: the last one is the validation split"
    data_dir = get_data_dir() if data_dir is None else data_dir
    os.makedirs(data_dir, exist_ok=True)
    rng = random.Random(seed)
    if chars_per_shard <= 0:
        docs = list(docs)
        rng.shuffle(docs)
        per = (len(docs) + num_shards - 1) // num_shards
        shards = [docs[i * per : (i + 1) * per] for i in range(num_shards)]
    else:

        def stream():
            while True:
                order = list(docs)
                rng.shuffle(order)
                yield from order

        it = stream()
        shards = []
        for _ in range(num_shards):
            shard, n = [], 0
            while n < chars_per_shard:
                d = next(it)
                shard.append(d)
                n += len(d)
            shards.append(shard)
    for i, shard in enumerate(shards):
        assert shard, f"shard {i} would be empty: too few documents ({len(docs)}) for {num_shards} shards"
        path = os.path.join(data_dir, index_to_filename(i))
        write_shard(shard, path)
        print(f"Wrote {path}: {len(shard):,} documents, {sum(len(d) for d in shard):,} chars")
    print(f"Done! Built: {num_shards}/{num_shards} shards to {data_dir}")


# -----------------------------------------------------------------------------
# download mode (classic): FineWeb-EDU shards over HTTP, resumable, integrity-checked


def _parquet_ok(path):
    try:
        pf = pq.ParquetFile(path)  # reads and validates the footer
        return "text" in pf.schema_arrow.names
    except Exception:
        return False


def download_single_file(index, max_attempts=5):
    import urllib.request

    filename = index_to_filename(index)
    filepath = os.path.join(get_data_dir(), filename)
    if os.path.exists(filepath) and _parquet_ok(filepath):
        print(f"Skipping {filepath} (already exists)")
        return True
    url = f"{BASE_URL}/{filename}"
    print(f"Downloading {filename}...")
    tmp = filepath + ".tmp"
    for attempt in range(1, max_attempts + 1):
        try:
            have = os.path.getsize(tmp) if os.path.exists(tmp) else 0
            req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
            with urllib.request.urlopen(req, timeout=30) as resp:
                append = have > 0 and resp.status == 206  # server honoured the range: resume
                with open(tmp, "ab" if append else "wb") as f:
                    while chunk := resp.read(1 << 20):
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
            if not _parquet_ok(tmp):
                os.remove(tmp)
                raise OSError("downloaded file is not a readable parquet with a text column")
            os.replace(tmp, filepath)
            print(f"Successfully downloaded {filename}")
            return True
        except Exception as e:
            print(f"Attempt {attempt}/{max_attempts} failed for {filename}: {e}")
            if attempt < max_attempts:
                time.sleep(2**attempt)
    print(f"Failed to download {filename} after {max_attempts} attempts")
    return False


def download(num_files, num_workers=4):
    from multiprocessing import Pool

    num = MAX_SHARD + 1 if num_files == -1 else min(num_files, MAX_SHARD + 1)
    print(f"Downloading {num} shards using {num_workers} workers...")
    print(f"Target directory: {get_data_dir()}")
    with Pool(processes=num_workers) as pool:
        results = pool.map(download_single_file, range(num))
    print(f"Done! Downloaded: {sum(results)}/{num} shards to {get_data_dir()}")


# -----------------------------------------------------------------------------

if __name__ == "__main__":
    print_fingerprint()
    if len(sys.argv) > 1 and sys.argv[1] == "build":
        parser = argparse.ArgumentParser(description="Build parquet shards locally (no network)")
        parser.add_argument("--num-shards", type=int, default=4, help="number of shards; the last is the val split")
        parser.add_argument(
            "--chars-per-shard", type=int, default=0, help="0: split the corpus once; >0: repeat it to fill each shard"
        )
        parser.add_argument("--from-text", type=str, default="", help="directory of your own .txt/.md files")
        args = parser.parse_args(sys.argv[2:])
        docs = text_file_documents(args.from_text) if args.from_text else demo_documents()
        print(f"Corpus: {len(docs):,} documents, {sum(len(d) for d in docs):,} chars")
        build_shards(docs, args.num_shards, args.chars_per_shard)
    else:
        parser = argparse.ArgumentParser(description="Download FineWeb-Edu 100BT dataset shards")
        parser.add_argument(
            "-n", "--num-files", type=int, default=-1, help="Number of shards to download (default: -1 = all)"
        )
        parser.add_argument("-w", "--num-workers", type=int, default=4, help="Number of parallel download workers")
        args = parser.parse_args()
        download(args.num_files, args.num_workers)
