"""
BPE tokenizer in the classic nanochat format: trained with rustbpe, run with tiktoken.

tokenizer.pkl is a plain pickle of a tiktoken.Encoding named "rustbpe" (mergeable ranks + the 9 special
tokens in order). It is loaded ONLY through a restricted unpickler (load_tokenizer_pkl): a pickle can run
arbitrary code, and a tokenizer file is data.
"""

import io
import os
import pickle

SPECIAL_TOKENS = [
    "<|bos|>",  # every document begins with this
    "<|user_start|>",  # user messages
    "<|user_end|>",
    "<|assistant_start|>",  # assistant messages
    "<|assistant_end|>",
    "<|python_start|>",  # assistant invokes the python calculator tool
    "<|python_end|>",
    "<|output_start|>",  # python REPL outputs back to assistant
    "<|output_end|>",
]

# GPT-4 style split, except digits split into groups of 1-2 (not 1-3): wasteful for a small vocab otherwise
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)

# -----------------------------------------------------------------------------
# restricted loading of tokenizer.pkl

MAX_TOKENIZER_BYTES = 64 << 20  # a 65k-vocab tokenizer.pkl is ~1 MB
MAX_TOKENIZER_OPS = 4_000_000  # bounds what the opcodes can build (an amplifying pickle took 4.7 GB)


class _EncodingState:
    """Stands in for tiktoken.core.Encoding while unpickling: it only keeps the pickled state. tiktoken's
    own __setstate__ turns a *string* state into get_encoding(name), which downloads that encoding: code
    and network chosen by a data file. The Encoding is built afterwards from checked data."""

    def __setstate__(self, state):
        self.state = state


def _encoding_from_state(obj, path):
    import tiktoken.core

    state = getattr(obj, "state", None) if type(obj) is _EncodingState else None
    if isinstance(state, str):
        raise ValueError(
            f"{path} names the registered encoding {state[:40]!r} instead of holding one: "
            "loading it would download it; refused"
        )
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a pickled tiktoken Encoding")
    name, pat, ranks, special = (state.get(k) for k in ("name", "pat_str", "mergeable_ranks", "special_tokens"))
    if not (
        isinstance(name, str)
        and isinstance(pat, str)
        and isinstance(ranks, dict)
        and isinstance(special, dict)
        and all(type(k) is bytes and type(v) is int for k, v in ranks.items())
        and all(type(k) is str and type(v) is int for k, v in special.items())
    ):
        raise ValueError(f"{path}: the pickled Encoding state has the wrong shape")
    return tiktoken.core.Encoding(name=name, pat_str=pat, mergeable_ranks=ranks, special_tokens=special)


def _check_opcodes(data, path):
    import pickletools

    for count, _ in enumerate(pickletools.genops(data)):
        if count > MAX_TOKENIZER_OPS:
            raise ValueError(f"{path}: more than {MAX_TOKENIZER_OPS:,} pickle opcodes; not a tokenizer")


class _EncodingUnpickler(pickle.Unpickler):
    """Resolves only the one class a pickled tiktoken Encoding references. Anything else is refused."""

    ALLOWED = {("tiktoken.core", "Encoding")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return _EncodingState
        raise ValueError(f"refusing to unpickle {module}.{name}: tokenizer.pkl may only contain a tiktoken Encoding")

    def persistent_load(self, pid):
        raise ValueError("refusing persistent ids in tokenizer.pkl")


def load_tokenizer_pkl(path):
    """Load a pickled tiktoken.Encoding without allowing arbitrary code. Raises ValueError on anything else."""
    import stat

    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_TOKENIZER_BYTES:
            raise ValueError(f"{path} is not a regular file of at most {MAX_TOKENIZER_BYTES:,} bytes")
        data = f.read(MAX_TOKENIZER_BYTES + 1)
    try:
        _check_opcodes(data, path)
        enc = _encoding_from_state(_EncodingUnpickler(io.BytesIO(data)).load(), path)
    except ValueError:
        raise
    except Exception as e:  # truncated or corrupt pickles, bad state for the Encoding constructor, ...
        raise ValueError(f"{path} is not a valid pickled tiktoken Encoding: {type(e).__name__}: {e}") from e
    import tiktoken.core

    if type(enc) is not tiktoken.core.Encoding:
        raise ValueError(f"{path} holds a {type(enc).__name__}, expected a tiktoken Encoding")
    return enc


# -----------------------------------------------------------------------------


class RustBPETokenizer:
    """Light wrapper around a tiktoken Encoding (fast inference); training goes through rustbpe."""

    def __init__(self, enc, bos_token="<|bos|>"):
        self.enc = enc
        self.bos_token_id = self.encode_special(bos_token)

    @classmethod
    def train_from_iterator(cls, text_iterator, vocab_size):
        import rustbpe
        import tiktoken

        tokenizer = rustbpe.Tokenizer()
        vocab_size_no_special = vocab_size - len(SPECIAL_TOKENS)
        assert vocab_size_no_special >= 256, f"vocab_size must be >= {256 + len(SPECIAL_TOKENS)}, got {vocab_size}"
        tokenizer.train_from_iterator(text_iterator, vocab_size_no_special, pattern=SPLIT_PATTERN)
        pattern = tokenizer.get_pattern()
        mergeable_ranks = {bytes(k): v for k, v in tokenizer.get_mergeable_ranks()}
        tokens_offset = len(mergeable_ranks)
        special_tokens = {name: tokens_offset + i for i, name in enumerate(SPECIAL_TOKENS)}
        enc = tiktoken.Encoding(
            name="rustbpe", pat_str=pattern, mergeable_ranks=mergeable_ranks, special_tokens=special_tokens
        )
        return cls(enc)

    @classmethod
    def from_directory(cls, tokenizer_dir):
        return cls(load_tokenizer_pkl(os.path.join(tokenizer_dir, "tokenizer.pkl")))

    def get_vocab_size(self):
        return self.enc.n_vocab

    def get_special_tokens(self):
        return self.enc.special_tokens_set

    def id_to_token(self, id):
        return self.enc.decode([id])

    def encode_special(self, text):
        return self.enc.encode_single_token(text)

    def get_bos_token_id(self):
        return self.bos_token_id

    def encode(self, text, prepend=None, append=None, num_threads=8):
        # ordinary encoding: special-token strings inside text are plain text, never specials
        prepend_id = (
            (prepend if isinstance(prepend, int) else self.encode_special(prepend)) if prepend is not None else None
        )
        append_id = (append if isinstance(append, int) else self.encode_special(append)) if append is not None else None
        if isinstance(text, str):
            ids = self.enc.encode_ordinary(text)
            if prepend_id is not None:
                ids.insert(0, prepend_id)
            if append_id is not None:
                ids.append(append_id)
            return ids
        assert isinstance(text, list), f"Invalid input type: {type(text)}"
        ids = self.enc.encode_ordinary_batch(text, num_threads=num_threads)
        if prepend_id is not None:
            for row in ids:
                row.insert(0, prepend_id)
        if append_id is not None:
            for row in ids:
                row.append(append_id)
        return ids

    def __call__(self, *args, **kwargs):
        return self.encode(*args, **kwargs)

    def decode(self, ids):
        return self.enc.decode(ids)

    def save(self, tokenizer_dir):
        from nanochat.common import atomic_write

        os.makedirs(tokenizer_dir, exist_ok=True)
        pickle_path = os.path.join(tokenizer_dir, "tokenizer.pkl")
        atomic_write(pickle_path, lambda f: pickle.dump(self.enc, f, protocol=4))
        print(f"Saved tokenizer encoding to {pickle_path}")

    # -------------------------------------------------------------------------
    # chat rendering

    def render_conversation(self, conversation, max_tokens=2048):
        """Tokenize a chat conversation -> (ids, mask); mask=1 on tokens the assistant is trained to produce."""
        ids, mask = [], []

        def add_tokens(token_ids, mask_val):
            if isinstance(token_ids, int):
                token_ids = [token_ids]
            ids.extend(token_ids)
            mask.extend([mask_val] * len(token_ids))

        messages = conversation["messages"]
        if messages[0]["role"] == "system":
            # merge the system message into the first user message
            messages = [dict(m) for m in messages]
            assert messages[1]["role"] == "user", "System message must be followed by a user message"
            messages[1]["content"] = messages[0]["content"] + "\n\n" + messages[1]["content"]
            messages = messages[1:]
        assert len(messages) >= 1, f"Conversation has no messages: {messages}"

        bos = self.get_bos_token_id()
        user_start, user_end = self.encode_special("<|user_start|>"), self.encode_special("<|user_end|>")
        assistant_start, assistant_end = (
            self.encode_special("<|assistant_start|>"),
            self.encode_special("<|assistant_end|>"),
        )
        python_start, python_end = self.encode_special("<|python_start|>"), self.encode_special("<|python_end|>")
        output_start, output_end = self.encode_special("<|output_start|>"), self.encode_special("<|output_end|>")

        add_tokens(bos, 0)
        for i, message in enumerate(messages):
            must_be_from = "user" if i % 2 == 0 else "assistant"
            assert message["role"] == must_be_from, (
                f"Message {i} is from {message['role']} but should be from {must_be_from}"
            )
            content = message["content"]
            if message["role"] == "user":
                assert isinstance(content, str), "User messages are simply expected to be strings"
                add_tokens(user_start, 0)
                add_tokens(self.encode(content), 0)
                add_tokens(user_end, 0)
            else:
                add_tokens(assistant_start, 0)
                if isinstance(content, str):
                    add_tokens(self.encode(content), 1)
                elif isinstance(content, list):
                    for part in content:
                        value_ids = self.encode(part["text"])
                        if part["type"] == "text":
                            add_tokens(value_ids, 1)
                        elif part["type"] == "python":
                            add_tokens(python_start, 1)
                            add_tokens(value_ids, 1)
                            add_tokens(python_end, 1)
                        elif part["type"] == "python_output":
                            # the tool produces these at inference time: not supervised
                            add_tokens(output_start, 0)
                            add_tokens(value_ids, 0)
                            add_tokens(output_end, 0)
                        else:
                            raise ValueError(f"Unknown part type: {part['type']}")
                else:
                    raise ValueError(f"Unknown content type: {type(content)}")
                add_tokens(assistant_end, 1)
        return ids[:max_tokens], mask[:max_tokens]

    def render_for_completion(self, conversation):
        """Drop the final assistant message, render the rest, append <|assistant_start|> (prime for generation)."""
        messages = [dict(m) for m in conversation["messages"]]
        assert messages[-1]["role"] == "assistant", "Last message must be from the Assistant"
        messages.pop()
        ids, _ = self.render_conversation({"messages": messages})
        ids.append(self.encode_special("<|assistant_start|>"))
        return ids


# -----------------------------------------------------------------------------


def synthetic_tokenizer(vocab_size):
    """A tokenizer of exactly vocab_size tokens without training (throughput benchmarks only): the 256 bytes,
    then ASCII letter/space pairs, triples, quadruples, ... in a fixed order. Valid for tiktoken, useless for quality."""
    import itertools

    import tiktoken

    n = vocab_size - len(SPECIAL_TOKENS)
    ranks = {bytes([i]): i for i in range(256)}
    alphabet = b" etaoinshrdlucmfwypvbgkjqxzETAOINSHRDLUCMFWYPVBGKJQXZ"
    length = 2
    while len(ranks) < n:
        for combo in itertools.product(alphabet, repeat=length):
            if len(ranks) >= n:
                break
            ranks.setdefault(bytes(combo), len(ranks))
        length += 1
    special_tokens = {name: n + i for i, name in enumerate(SPECIAL_TOKENS)}
    enc = tiktoken.Encoding(name="rustbpe", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens=special_tokens)
    return RustBPETokenizer(enc)


def get_tokenizer():
    from nanochat.common import get_base_dir

    tokenizer_dir = os.path.join(get_base_dir(), "tokenizer")
    pkl = os.path.join(tokenizer_dir, "tokenizer.pkl")
    assert os.path.exists(pkl), f"Tokenizer not found at {pkl}. It gets written by: python -m nanochat.tok_train"
    return RustBPETokenizer.from_directory(tokenizer_dir)


def get_token_bytes(device="cpu"):
    import torch

    from nanochat.common import get_base_dir

    token_bytes_path = os.path.join(get_base_dir(), "tokenizer", "token_bytes.pt")
    assert os.path.exists(token_bytes_path), (
        f"Token bytes not found at {token_bytes_path}? It gets written by tok_train.py"
    )
    with open(token_bytes_path, "rb") as f:
        token_bytes = torch.load(f, map_location=device, weights_only=True)
    return token_bytes


def compute_token_bytes(tokenizer):
    """int32 [V]: UTF-8 length of decode([i]) (lossy decode, so invalid bytes count 3), 0 for special tokens."""
    import torch

    special = tokenizer.get_special_tokens()
    out = []
    for token_id in range(tokenizer.get_vocab_size()):
        s = tokenizer.decode([token_id])
        out.append(0 if s in special else len(s.encode("utf-8")))
    return torch.tensor(out, dtype=torch.int32)
