"""
Synthetic, offline conversation tasks for midtraining, SFT and chat eval, plus users' own JSONL conversations.

Each task is a deterministic list of conversations ({"messages": [...]}) for a split ("train" or "test"):
- Arithmetic: add/subtract/multiply small numbers, worked with the calculator tool (like GSM8K's <<expr=result>>),
  final line "#### <answer>".
- Spelling: spell a word letter by letter, or count a letter in a word (with the tool, like SpellingBee).
- Identity: questions about who the model is.
- CustomJSON: a JSONL file, one conversation per line (a list of messages, or {"messages": [...]}).
Generative tasks define evaluate(conversation, completion_text) -> bool for chat_eval.
"""

import json
import random
import re

WORDS = """apple banana cherry orange grape lemon mango melon peach pear plum berry garden window kitchen
table chair pencil paper letter number python module string integer float boolean function method class
object socket thread process signal random vector matrix tensor model token model river mountain ocean forest
desert island valley castle bridge rocket planet galaxy comet moon star cloud storm thunder rain snow winter
summer autumn spring yellow purple silver golden little giant happy brave quiet simple strong bright gentle
strawberry elephant giraffe dolphin penguin tiger rabbit turtle monkey zebra camel horse butter bread cheese
coffee sugar honey pepper salt tomato potato carrot onion garlic doctor teacher farmer painter writer singer
engine wheel train plane rocket ladder hammer needle thread basket bottle candle mirror pillow blanket""".split()
WORDS = sorted(set(WORDS))


class Task:
    """A list of conversations for one split; a subset can be selected with start/stop/step."""

    def __init__(self, split="train", size=1000, seed=0):
        assert split in ("train", "test"), "split must be train|test"
        self.split, self.size = split, size
        self.seed = seed + (0 if split == "train" else 1_000_003)  # disjoint streams for train and test

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        assert 0 <= index < self.size, f"index {index} out of range for {type(self).__name__} of size {self.size}"
        return self.get_example(index, random.Random(self.seed * 1_000_003 + index))

    eval_type = "generative"


class Arithmetic(Task):
    name = "Arithmetic"

    def get_example(self, index, rng):
        op = rng.choice("+-*")
        a, b = (rng.randint(2, 99), rng.randint(2, 99)) if op != "*" else (rng.randint(2, 30), rng.randint(2, 30))
        expr = f"{a}{op}{b}"
        result = eval(expr)  # two small integer literals: safe
        word = {"+": "plus", "-": "minus", "*": "times"}[op]
        question = rng.choice([f"What is {a} {op} {b}?", f"Compute {a} {word} {b}.", f"How much is {a} {op} {b}?"])
        content = [
            {"type": "text", "text": f"We need {a} {word} {b}. "},
            {"type": "python", "text": expr},
            {"type": "python_output", "text": str(result)},
            {"type": "text", "text": f"\n#### {result}"},
        ]
        return {
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": content}],
            "answer": str(result),
        }

    def evaluate(self, conversation, completion):
        m = re.search(r"####\s*(-?\d+)", completion)
        return m is not None and m.group(1) == conversation["answer"]


class Spelling(Task):
    name = "Spelling"

    def get_example(self, index, rng):
        word = rng.choice(WORDS)
        if rng.random() < 0.5:
            answer = "-".join(word)
            messages = [
                {"role": "user", "content": f"Spell the word {word}."},
                {"role": "assistant", "content": f"{word} is spelled {answer}\n#### {answer}"},
            ]
        else:
            letter = rng.choice(word)
            count = word.count(letter)
            answer = str(count)
            content = [
                {"type": "text", "text": f"Spelled out, {word} is {'-'.join(word)}. Counting '{letter}': "},
                {"type": "python", "text": f"'{word}'.count('{letter}')"},
                {"type": "python_output", "text": answer},
                {"type": "text", "text": f"\n#### {answer}"},
            ]
            messages = [
                {"role": "user", "content": f"How many {letter} are in the word {word}?"},
                {"role": "assistant", "content": content},
            ]
        return {"messages": messages, "answer": answer}

    def evaluate(self, conversation, completion):
        m = re.search(r"####\s*(\S+)", completion)
        return m is not None and m.group(1).strip().rstrip(".") == conversation["answer"]


IDENTITY_QA = [
    ("Who are you?", "I am nanochat, a small language model trained from scratch with the nanochat trainer."),
    ("What is your name?", "My name is nanochat."),
    ("Who made you?", "I was trained with nanochat, a compact open-source trainer in the style of nanoGPT."),
    ("Are you ChatGPT?", "No, I am nanochat, a much smaller model trained with the nanochat trainer."),
    ("What can you do?", "I am nanochat: I can chat a little, do small sums with my calculator and spell words."),
    ("hi", "Hello! I am nanochat. How can I help you?"),
    ("Hello!", "Hi there, I am nanochat. What would you like to talk about?"),
    ("Tell me about yourself.", "I am nanochat, a small GPT-style model with rotary embeddings and a BPE tokenizer."),
]


class Identity(Task):
    name = "Identity"

    def get_example(self, index, rng):
        q, a = IDENTITY_QA[index % len(IDENTITY_QA)] if self.split == "train" else rng.choice(IDENTITY_QA)
        return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], "answer": "nanochat"}

    def evaluate(self, conversation, completion):
        return "nanochat" in completion.lower()


class CustomJSON:
    """Conversations from a JSONL file. A missing file is an error (FileNotFoundError), not a silent skip."""

    name = "CustomJSON"
    eval_type = "generative"

    def __init__(self, filepath):
        self.conversations = []
        with open(filepath, encoding="utf-8") as f:  # raises FileNotFoundError when missing
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                obj = json.loads(line)
                messages = obj["messages"] if isinstance(obj, dict) else obj
                assert isinstance(messages, list) and len(messages) >= 2, (
                    f"{filepath}:{lineno}: expected a list of >= 2 messages"
                )
                self.conversations.append({"messages": messages})

    def __len__(self):
        return len(self.conversations)

    def __getitem__(self, index):
        return self.conversations[index]


class TaskMixture:
    """Concatenation of tasks, deterministically shuffled (seed 42)."""

    def __init__(self, tasks, seed=42):
        self.tasks = tasks
        self.index_map = [(ti, i) for ti, task in enumerate(tasks) for i in range(len(task))]
        random.Random(seed).shuffle(self.index_map)

    def __len__(self):
        return len(self.index_map)

    def __getitem__(self, index):
        ti, i = self.index_map[index]
        return self.tasks[ti][i]


TASKS = {"Arithmetic": Arithmetic, "Spelling": Spelling, "Identity": Identity}


def make_mixture(split, size, data=""):
    """The synthetic tasks (size examples each; identity gets size // 4) plus an optional JSONL file (train only)."""
    tasks = [Arithmetic(split, size), Spelling(split, size), Identity(split, max(8, size // 4))]
    if data and split == "train":
        tasks.append(CustomJSON(data))
    return TaskMixture(tasks)
