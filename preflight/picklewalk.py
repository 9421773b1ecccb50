"""A symbolic walk of a torch file's ``data.pkl``: pickle opcodes read with ``pickletools.genops`` and
interpreted on plain Python values, NEVER executed. Only the GLOBALs of a plain tensor dict are allowed
(``SAFE_GLOBALS``); any other is ``UnsafePickle``. Bounded in bytes, opcodes, memo and integer size."""

from __future__ import annotations

import pickletools
from dataclasses import dataclass
from typing import Any

MAX_PICKLE_BYTES = 64 << 20
# a symbolic walk is bounded whatever the opcodes do: a d20 state dict is a few thousand ops
MAX_PICKLE_OPS = 4_000_000
MAX_PICKLE_MEMO = 1_000_000
MAX_PICKLE_INT = 1 << 63  # a 5000-digit "dimension" is corrupt data, not a shape (str() of it raises)

# GLOBALs a plain torch state dict / optimizer state may reference (nothing that runs code)
SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "device"),
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("_codecs", "encode"),
}
STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "UntypedStorage": "uint8",
}
DTYPE_NAMES = {"float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"}


# -- the pickle walker (symbolic; executes nothing) ---------------------------------------------
class UnsafePickle(Exception):
    pass


@dataclass
class TensorInfo:
    shape: tuple[int, ...]
    dtype: str
    storage_key: str = ""
    numel: int = 0


class _Global:
    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


class _Storage:
    def __init__(self, dtype: str, key: str, numel: int):
        self.dtype, self.key, self.numel = dtype, key, numel


_MARK = object()


def walk_pickle(data: bytes) -> Any:
    """Rebuild the pickled object *symbolically*: dicts/lists/tuples/scalars and TensorInfo leaves.
    Raises UnsafePickle on any GLOBAL outside SAFE_GLOBALS or any opcode that builds arbitrary objects."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    marks: list[int] = []

    def pop_mark() -> list[Any]:
        k = marks.pop()
        items = stack[k:]
        del stack[k:]
        return items

    ops = pickletools.genops(data)
    for count, (op, arg, _pos) in enumerate(ops):
        if count >= MAX_PICKLE_OPS:
            raise ValueError(f"more than {MAX_PICKLE_OPS:,} opcodes")
        if len(memo) > MAX_PICKLE_MEMO:
            raise ValueError(f"more than {MAX_PICKLE_MEMO:,} memo entries")
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_PICKLE_INT:
            raise ValueError("an integer too large for any tensor shape or offset")
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            break
        if name in ("GLOBAL", "STACK_GLOBAL"):
            if name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
            else:
                attr = stack.pop()
                module = stack.pop()
            if not isinstance(module, str) or not isinstance(attr, str):
                raise UnsafePickle("STACK_GLOBAL with non-string names")
            if (module, attr) not in SAFE_GLOBALS and not (module == "torch" and attr in STORAGE_DTYPES):
                raise UnsafePickle(f"references {module}.{attr}")
            stack.append(_Global(module, attr))
        elif name == "MARK":
            marks.append(len(stack))
        elif name in ("EMPTY_DICT",):
            stack.append({})
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "EMPTY_SET":
            stack.append(set())
        elif name == "DICT":
            items = pop_mark()
            stack.append(dict(zip(items[::2], items[1::2], strict=False)))
        elif name == "LIST":
            stack.append(pop_mark())
        elif name == "TUPLE":
            stack.append(tuple(pop_mark()))
        elif name == "TUPLE1":
            stack[-1:] = [(stack[-1],)]
        elif name == "TUPLE2":
            stack[-2:] = [tuple(stack[-2:])]
        elif name == "TUPLE3":
            stack[-3:] = [tuple(stack[-3:])]
        elif name in (
            "BINUNICODE",
            "SHORT_BINUNICODE",
            "UNICODE",
            "BINUNICODE8",
            "STRING",
            "BINSTRING",
            "SHORT_BINSTRING",
            "BINBYTES",
            "SHORT_BINBYTES",
            "BINBYTES8",
            "BYTEARRAY8",
            "BININT",
            "BININT1",
            "BININT2",
            "INT",
            "LONG",
            "LONG1",
            "LONG4",
            "BINFLOAT",
            "FLOAT",
        ):
            stack.append(arg)
        elif name == "NONE":
            stack.append(None)
        elif name == "NEWTRUE":
            stack.append(True)
        elif name == "NEWFALSE":
            stack.append(False)
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            if int(arg) not in memo:
                raise UnsafePickle("memo reference before assignment")
            stack.append(memo[int(arg)])
        elif name == "SETITEM":
            value = stack.pop()
            key = stack.pop()
            _setitem(stack[-1], key, value)
        elif name == "SETITEMS":
            items = pop_mark()
            for k, v in zip(items[::2], items[1::2], strict=False):
                _setitem(stack[-1], k, v)
        elif name == "APPEND":
            value = stack.pop()
            _append(stack[-1], value)
        elif name == "APPENDS":
            for v in pop_mark():
                _append(stack[-1], v)
        elif name == "ADDITEMS":
            items = pop_mark()
            if isinstance(stack[-1], set):
                stack[-1].update(x for x in items if isinstance(x, (str, int, float, tuple)))
        elif name == "BINPERSID":
            pid = stack.pop()
            stack.append(_persistent(pid))
        elif name == "REDUCE":
            args = stack.pop()
            func = stack.pop()
            stack.append(_reduce(func, args))
        elif name == "BUILD":
            stack.pop()  # the BUILD state (OrderedDict._metadata and the like): attribute state, ignored
            if not isinstance(stack[-1], (dict, list, TensorInfo)):
                raise UnsafePickle("BUILD on a non-container")
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            pop_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        else:  # INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT*, PERSID (text) ...: arbitrary objects
            raise UnsafePickle(f"uses the {name} opcode")
    if len(stack) != 1:
        raise UnsafePickle("malformed pickle stack")
    return stack[0]


def _setitem(target: Any, key: Any, value: Any) -> None:
    if not isinstance(target, dict):
        raise UnsafePickle("SETITEM on a non-dict")
    try:
        target[key] = value
    except TypeError:
        target[repr(key)] = value


def _append(target: Any, value: Any) -> None:
    if not isinstance(target, list):
        raise UnsafePickle("APPEND on a non-list")
    target.append(value)


def _persistent(pid: Any) -> _Storage:
    # torch zip format: ('storage', <StorageType GLOBAL>, key, location, numel)
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise UnsafePickle(f"unexpected persistent id {pid!r:.80}")
    stype = pid[1]
    if isinstance(stype, _Global) and stype.name in STORAGE_DTYPES:
        dtype = STORAGE_DTYPES[stype.name]
    elif isinstance(stype, str) and stype in DTYPE_NAMES:
        dtype = stype
    else:
        dtype = "unknown"
    return _Storage(dtype, str(pid[2]), int(pid[4]) if isinstance(pid[4], int) else 0)


def _reduce(func: Any, args: Any) -> Any:
    if not isinstance(func, _Global) or not isinstance(args, tuple):
        raise UnsafePickle("REDUCE of a non-global")
    key = (func.module, func.name)
    if key == ("collections", "OrderedDict"):
        return {}
    if key in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor_v3")):
        storage = args[0] if args else None
        size = args[2] if len(args) > 2 else ()
        if not isinstance(storage, _Storage):
            raise UnsafePickle("tensor without a storage")
        shape = tuple(int(x) for x in size) if isinstance(size, (tuple, list)) else ()
        return TensorInfo(shape=shape, dtype=storage.dtype, storage_key=storage.key, numel=storage.numel)
    if key in (("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state")):
        return args[0] if args and isinstance(args[0], TensorInfo) else TensorInfo((), "unknown")
    if key == ("torch", "device"):
        return f"device{args!r}"
    if key == ("torch", "Size"):
        return tuple(args[0]) if args else ()
    if key in (("builtins", "set"), ("builtins", "frozenset")):
        return set()
    if key == ("builtins", "slice"):
        return None
    if key == ("_codecs", "encode"):
        return b""
    if key == ("torch.serialization", "_get_layout"):
        return "layout"
    raise UnsafePickle(f"calls {func.module}.{func.name}")
