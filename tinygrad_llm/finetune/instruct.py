"""Instruction fine-tuning: teaching a pretrained GPT to answer requests (lesson 11).

A pretrained model continues text; it does not know that some text is a question and the next
part should be its answer. Instruction tuning shows it thousands of (prompt, response) pairs in
one fixed layout, the *template*, and trains it to produce the response:

    ### Instruction:
    Name the topic of this passage.

    ### Input:
    The "for" statement is used to iterate over the elements of a sequence ...

    ### Response:
    The "for" statement<|endoftext|>

Four parts, in the order the lesson uses them:

1. data (``build_instruction_data``): questions with answers that can be checked, made from the
   corpus itself: the topic of a passage (the topic's title), the title of its section, and the
   next few words. Train and held-out examples never share a passage, and whole topics can be
   held out to test questions about text the model was never tuned on;
2. batches (``encode_example``, ``collate``): prompt and response become one token sequence;
   targets are the inputs shifted by one, and every target that is not part of the response
   (the prompt, the padding) is set to ``IGNORE_INDEX``, so the loss is the mean over response
   tokens only::

       L = -(1 / |R|) sum_{t in R} log p(x_{t+1} | x_1 .. x_t),   R = positions whose next token
                                                                    belongs to the response

3. training (``InstructionTrainer``): AdamW on those batches, optionally with *replay*: a
   fraction of every batch is plain pretraining text, which keeps the model from forgetting it;
4. evaluation (``evaluate_responses``): greedy answers to held-out prompts, scored by exact
   match (after ``normalize_answer``) and ROUGE-L; forgetting is measured separately, as the
   change in perplexity on the pretraining validation text (``evaluation.perplexity``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..core import functional as F
from ..text.bpe import BPETokenizer
from ..text.corpus import Document
from ..text.data import random_batch
from ..evaluate.perplexity import perplexity
from ..model.generation import generate
from ..evaluate.metrics import rouge_l
from ..train.optim import AdamW, clip_grad_norm_, cosine_schedule, weight_decay_groups
from ..core.tensor import no_grad

IGNORE_INDEX = -100   # the target of a position that does not count (cross_entropy's default)
TASKS = ("topic", "section", "continue")

# What each task asks; "{n}" is replaced by the number of words a "continue" answer has.
INSTRUCTIONS = {
    "topic": "Name the topic of this passage.",
    "section": "Give the title of the section this passage comes from.",
    "continue": "Continue the passage with the next {n} words.",
}


# ----------------------------------------------------------------------------------------------
# The template


@dataclass(frozen=True)
class PromptTemplate:
    """How an instruction and its input are laid out for the model (the Alpaca layout by default).

    The prompt is ``instruction_header + instruction [+ input_header + input] + response_header``
    and the response follows directly. Without an input the input block is left out.

        >>> print(PromptTemplate().format_prompt("Say hi.", "to Ada"), end="|")
        ### Instruction:
        Say hi.
        <BLANKLINE>
        ### Input:
        to Ada
        <BLANKLINE>
        ### Response:
        |

    careful: every header should end with a newline. The prompt and the response are encoded
    separately, and a prompt that ended with a space would keep that space as its own token,
    while in ordinary text the tokenizer glues a space to the word after it.
    """

    instruction_header: str = "### Instruction:\n"
    input_header: str = "\n\n### Input:\n"
    response_header: str = "\n\n### Response:\n"

    def format_prompt(self, instruction: str, input: str = "") -> str:
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError(f"an instruction must be a non-empty string, got {instruction!r}")
        if not isinstance(input, str):
            raise TypeError(f"the input must be a string, got {type(input).__name__}")
        body = self.instruction_header + instruction
        if input:
            body += self.input_header + input
        return body + self.response_header

    @classmethod
    def compact(cls) -> PromptTemplate:
        """A few-token layout for tiny contexts (the 32-token quick model): ``instruction\\n
        input\\n=\\n``. The model learns any consistent layout; the headers only need to be
        the same in training and use."""
        return cls(instruction_header="", input_header="\n", response_header="\n=\n")


DEFAULT_TEMPLATE = PromptTemplate()


# ----------------------------------------------------------------------------------------------
# The dataset


@dataclass(frozen=True)
class InstructionExample:
    """One request and its answer. ``task``, ``topic`` (the name of the document the passage
    comes from) and ``passage`` (a stable id, ``topic/section/chunk``) say where it came from."""

    instruction: str
    input: str
    response: str
    task: str = ""
    topic: str = ""
    passage: str = ""

    def prompt(self, template: PromptTemplate = DEFAULT_TEMPLATE) -> str:
        return template.format_prompt(self.instruction, self.input)


@dataclass(frozen=True)
class Passage:
    """A run of words from one section, and the words that follow it in the text."""

    id: str                # "topic/section index/chunk index"
    topic: str             # the document's name
    topic_title: str       # the document's title (its first line)
    section_title: str
    text: str              # ``passage_words`` words joined by single spaces
    next_words: str        # the following ``answer_words`` words


def section_owners(documents: Sequence[Document]) -> dict[str, str]:
    """For every distinct section text, the name of the document that owns it.

    The embedded corpus repeats itself: "compound" contains the whole of "for", "while", "try"...
    and "specialnames" contains "customization", "attribute-access"... A passage must have one
    answer, so a section found in several documents belongs to the one with the fewest sections
    (the most specific topic: "for" rather than "compound"), ties to the first name in order.

        >>> owners = section_owners([Document("big", "A\\n*\\n\\nx\\n\\nB\\n=\\n\\ny"),
        ...                          Document("small", "B\\n*\\n\\ny")])
        >>> owners["x"], owners["y"]
        ('big', 'small')
    """
    owners: dict[str, tuple[int, str]] = {}
    for document in documents:
        sections = document.sections()
        for section in sections:
            claim = (len(sections), document.name)
            if section.text not in owners or claim < owners[section.text]:
                owners[section.text] = claim
    return {text: name for text, (_, name) in owners.items()}


def corpus_passages(documents: Sequence[Document], passage_words: int,
                    answer_words: int) -> list[Passage]:
    """Every section (each distinct section once, see ``section_owners``) cut into consecutive,
    non-overlapping chunks of ``passage_words + answer_words`` words; the first part of a chunk
    is the passage, the rest its continuation. Whitespace (line breaks, indentation) becomes a
    single space, so a passage and every answer is one line. Words left over at the end of a
    section (less than a chunk) are not used, and a chunk whose passage text was seen before
    is skipped, so no two passages are equal."""
    for name, value in (("passage_words", passage_words), ("answer_words", answer_words)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    owners = section_owners(documents)
    chunk = passage_words + answer_words
    passages, seen = [], set()
    for document in documents:
        for s, section in enumerate(document.sections()):
            if owners[section.text] != document.name:
                continue
            words = section.text.split()
            for c in range(len(words) // chunk):
                part = words[c * chunk:(c + 1) * chunk]
                text = " ".join(part[:passage_words])
                if text in seen:
                    continue
                seen.add(text)
                passages.append(Passage(id=f"{document.name}/{s}/{c}", topic=document.name,
                                        topic_title=document.title, section_title=section.title,
                                        text=text, next_words=" ".join(part[passage_words:])))
    return passages


def passage_examples(passage: Passage, tasks: Sequence[str] = TASKS,
                     instructions: dict[str, str] | None = None) -> list[InstructionExample]:
    """The examples one passage gives, one per task. "section" is skipped when the section
    title equals the topic title (most topics have one section: it would repeat "topic")."""
    instructions = {**INSTRUCTIONS, **(instructions or {})}
    answer_words = len(passage.next_words.split())
    examples = []
    for task in tasks:
        if task == "topic":
            response = passage.topic_title
        elif task == "section":
            if passage.section_title == passage.topic_title:
                continue
            response = passage.section_title
        elif task == "continue":
            response = passage.next_words
        else:
            raise ValueError(f"unknown task {task!r}; the tasks are {TASKS}")
        examples.append(InstructionExample(
            instruction=instructions[task].format(n=answer_words), input=passage.text,
            response=response, task=task, topic=passage.topic, passage=passage.id))
    return examples


@dataclass(frozen=True)
class InstructionData:
    """Train and held-out examples. ``held_out`` holds passages of the training topics that
    training never sees, and every passage of the ``held_out_topics`` (topics never seen)."""

    train: list[InstructionExample]
    held_out: list[InstructionExample]
    held_out_topics: tuple[str, ...]

    def seen_topic(self, example: InstructionExample) -> bool:
        return example.topic not in self.held_out_topics

    def summary(self) -> dict[str, dict[str, int]]:
        """Example counts: {"train" | "held-out, seen topics" | "held-out, unseen topics": {task: n}}."""
        groups = {"train": self.train,
                  "held-out, seen topics": [e for e in self.held_out if self.seen_topic(e)],
                  "held-out, unseen topics": [e for e in self.held_out if not self.seen_topic(e)]}
        return {group: {task: sum(e.task == task for e in examples) for task in TASKS}
                for group, examples in groups.items()}


def build_instruction_data(documents: Sequence[Document], passage_words: int = 24,
                           answer_words: int = 4, held_out_topics: Sequence[str] = (),
                           held_out_fraction: float = 0.15, tasks: Sequence[str] = TASKS,
                           instructions: dict[str, str] | None = None,
                           seed: int = 0) -> InstructionData:
    """Instruction examples from a corpus, split into train and held-out by passage.

    The passages are ``corpus_passages(documents, passage_words, answer_words)``. Every passage
    of a topic in ``held_out_topics`` is held out; of the others, a fraction
    ``held_out_fraction`` (rounded, chosen by a permutation seeded with ``seed``) is held out
    and the rest is for training. All the examples of one passage (``passage_examples``) go to
    the same side, so train and held-out never share a passage. The same arguments always give
    the same examples in the same order (passage order, then task order).
    """
    if not 0.0 <= held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1), got {held_out_fraction}")
    unknown_tasks = [task for task in tasks if task not in TASKS]
    if unknown_tasks or not tasks:
        raise ValueError(f"unknown tasks {unknown_tasks or list(tasks)}; choose from {TASKS}")
    names = {document.name for document in documents}
    missing = [name for name in held_out_topics if name not in names]
    if missing:
        raise ValueError(f"held_out_topics {missing} are not documents of this corpus")
    held_out_topics = tuple(sorted(set(held_out_topics)))
    passages = corpus_passages(documents, passage_words, answer_words)
    seen = [i for i, p in enumerate(passages) if p.topic not in held_out_topics]
    if not seen:
        raise ValueError("every passage belongs to a held-out topic: nothing is left to train on")
    order = np.random.default_rng(seed).permutation(len(seen))
    held = {seen[i] for i in order[:int(round(held_out_fraction * len(seen)))]}
    train, held_out = [], []
    for i, passage in enumerate(passages):
        side = held_out if (i in held or passage.topic in held_out_topics) else train
        side.extend(passage_examples(passage, tasks, instructions))
    return InstructionData(train=train, held_out=held_out, held_out_topics=held_out_topics)


def validation_topics(documents: Sequence[Document], tokenizer: BPETokenizer,
                      n_train_tokens: int) -> list[str]:
    """Names of the documents that reach into the pretraining validation tokens.

    ``prepare_corpus`` encodes the documents one after another and keeps the first
    ``n_train_tokens`` for training. Holding these topics out of instruction tuning keeps the
    forgetting measurement clean: tuning on their passages would teach the model the very text
    its validation perplexity is measured on."""
    # document i takes its own tokens plus, from the second on, the separator before it
    lengths = [len(tokenizer.encode(document.text)) + (i > 0) for i, document in enumerate(documents)]
    ends = np.cumsum(lengths)  # the token index just after each document
    return [document.name for document, end in zip(documents, ends) if end > n_train_tokens]


# ----------------------------------------------------------------------------------------------
# Tokens and batches


class PromptTooLongError(ValueError):
    """A prompt does not fit in the model's context (prompts are never cut)."""


@dataclass(frozen=True, eq=False)  # eq=False: "==" on two arrays is an array, not a bool
class EncodedExample:
    """``ids`` = prompt tokens, response tokens, ``<|endoftext|>``, cut to at most
    context_length + 1 tokens; the first ``prompt_length`` of them are the prompt."""

    ids: np.ndarray
    prompt_length: int
    example: InstructionExample | None = None

    @property
    def response_ids(self) -> np.ndarray:
        return self.ids[self.prompt_length:]


def encode_example(tokenizer: BPETokenizer, example: InstructionExample, context_length: int,
                   template: PromptTemplate = DEFAULT_TEMPLATE) -> EncodedExample:
    """Token ids of prompt + response + ``<|endoftext|>``, with the truncation rule:

    * the prompt is never cut: a prompt of more than ``context_length`` tokens raises
      ``PromptTooLongError`` (cutting it would lose the question or the "### Response:" cue);
    * otherwise the sequence keeps its first ``context_length + 1`` tokens, the most one
      training row can use (inputs are all tokens but the last, targets all but the first).
      A response cut this way loses its end, including ``<|endoftext|>``.

    A prompt of exactly ``context_length`` tokens keeps one response token to learn from.
    The end-of-text token is what teaches the model to stop.
    """
    prompt = tokenizer.encode(example.prompt(template))
    if len(prompt) > context_length:
        where = f" ({example.task} on {example.topic!r})" if example.task else ""
        raise PromptTooLongError(
            f"the prompt{where} is {len(prompt)} tokens, more than the context length "
            f"{context_length}; prompts are never cut, so shorten the input (fewer passage words) "
            f"or the template, or drop such examples (encode_examples(..., skip_too_long=True))")
    response = tokenizer.encode(example.response)
    ids = np.array(prompt + response + [tokenizer.eot_id], dtype=np.int64)[:context_length + 1]
    return EncodedExample(ids=ids, prompt_length=len(prompt), example=example)


def encode_examples(tokenizer: BPETokenizer, examples: Sequence[InstructionExample],
                    context_length: int, template: PromptTemplate = DEFAULT_TEMPLATE,
                    skip_too_long: bool = False) -> list[EncodedExample]:
    """``encode_example`` for each example; with ``skip_too_long`` an example whose prompt does
    not fit is left out instead of raising (each result keeps its ``example``)."""
    encoded = []
    for example in examples:
        try:
            encoded.append(encode_example(tokenizer, example, context_length, template))
        except PromptTooLongError:
            if not skip_too_long:
                raise
    return encoded


def collate(batch: Sequence[EncodedExample], pad_id: int,
            ignore_index: int = IGNORE_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """One training batch ``(inputs, targets)``, each (B, L) int64, L = longest ids - 1.

    Row b: ``inputs[b, t] = ids[t]`` and ``targets[b, t] = ids[t + 1]`` for the real tokens,
    right-padded with ``pad_id`` (we use ``<|endoftext|>``); a target counts only when it is a
    response token, i.e. for t >= prompt_length - 1 (the last prompt position predicts the
    first response token). Every other target is ``ignore_index``: prompt and padding add
    nothing to the loss. Padding on the right needs no attention mask: causal attention never
    lets a real token look at the padding after it.

        >>> row = EncodedExample(np.array([5, 6, 7, 8, 9]), prompt_length=3)
        >>> inputs, targets = collate([row, EncodedExample(np.array([5, 6, 7]), 2)], pad_id=0)
        >>> inputs.tolist(), targets.tolist()
        ([[5, 6, 7, 8], [5, 6, 0, 0]], [[-100, -100, 8, 9], [-100, 7, -100, -100]])
    """
    if len(batch) == 0:
        raise ValueError("collate needs at least one example")
    for k, row in enumerate(batch):
        if not 1 <= row.prompt_length < len(row.ids):
            raise ValueError(f"example {k}: prompt_length {row.prompt_length} leaves no response "
                             f"token among its {len(row.ids)} ids")
    length = max(len(row.ids) for row in batch) - 1
    inputs = np.full((len(batch), length), pad_id, dtype=np.int64)         # (B, L)
    targets = np.full((len(batch), length), ignore_index, dtype=np.int64)  # (B, L)
    for b, row in enumerate(batch):
        n = len(row.ids) - 1
        inputs[b, :n] = row.ids[:-1]
        targets[b, row.prompt_length - 1:n] = row.ids[row.prompt_length:]
    return inputs, targets


def response_loss(model, encoded: Sequence[EncodedExample], pad_id: int, batch_size: int = 16) -> float:
    """The masked loss over every response token of ``encoded`` (a mean over tokens, not over
    examples), in eval mode without a graph: how well the model predicts the answers."""
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for start in range(0, len(encoded), batch_size):
                inputs, targets = collate(encoded[start:start + batch_size], pad_id)
                loss = F.cross_entropy(model(inputs), targets, reduction="sum")
                total += float(loss.item())
                count += int((targets != IGNORE_INDEX).sum())
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("response_loss: there are no response tokens to score")
    return total / count


# ----------------------------------------------------------------------------------------------
# Training, with optional replay of pretraining text


@dataclass(frozen=True)
class InstructConfig:
    """How to instruction-tune. The defaults suit the course model (a few hundred steps)."""

    steps: int = 200
    batch_size: int = 16
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-4
    warmup_steps: int = 20
    # Weight decay pulls weights toward zero, not toward their pretrained values: here it would
    # only add forgetting, so it is off by default.
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.95)
    grad_clip: float = 1.0
    replay_fraction: float = 0.0   # the fraction of each batch that is pretraining text
    eval_interval: int = 50        # validation perplexity every this many steps (with val_tokens)
    log_interval: int = 50
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_interval", "log_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"InstructConfig.{name} must be a positive integer, got {value!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"InstructConfig.learning_rate must be positive, got {self.learning_rate}")
        replay_rows(self.batch_size, self.replay_fraction)  # raises for an impossible fraction


def replay_rows(batch_size: int, fraction: float) -> int:
    """How many of ``batch_size`` rows are pretraining windows: round(fraction * batch_size).

    A positive fraction must give at least one replay row and leave at least one instruction row.

        >>> replay_rows(16, 0.25), replay_rows(16, 0.0), replay_rows(10, 0.25)
        (4, 0, 2)
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"replay_fraction must be in [0, 1), got {fraction}")
    rows = int(round(fraction * batch_size))
    if fraction > 0 and not 0 < rows < batch_size:
        raise ValueError(f"replay_fraction {fraction} of a batch of {batch_size} is {rows} rows; "
                         f"it must give between 1 and {batch_size - 1} rows")
    return rows


@dataclass
class InstructHistory:
    """What a run measured: the loss of every step (and its two parts, with replay), and the
    perplexity on the pretraining validation text at step 0 and every ``eval_interval`` steps."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    instruction_loss: list[float] = field(default_factory=list)
    replay_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_perplexity: list[float] = field(default_factory=list)
    seconds: float = 0.0   # training time, evaluations excluded


class InstructionTrainer:
    """Instruction-tunes ``model`` on encoded examples.

    Each step takes ``batch_size`` rows: ``replay_rows(batch_size, replay_fraction)`` random
    windows of the pretraining tokens ``replay_tokens`` (plain next-token prediction on every
    position) and the next instruction examples of a shuffled pass over ``examples`` (a fresh
    permutation each pass). With w the replay fraction of rows, the loss is

        L = (1 - w) L_instruction + w L_replay,

    each part the mean over the tokens it counts, so w is the weight of pretraining text
    whatever the lengths of the rows. Only parameters that require grad are trained (a LoRA
    model trains its adapters). Warmup then cosine decay, gradient clipping, AdamW.
    """

    def __init__(self, model, examples: Sequence[EncodedExample], config: InstructConfig = InstructConfig(),
                 pad_id: int = 0, replay_tokens: np.ndarray | None = None,
                 val_tokens: np.ndarray | None = None, log: Callable[[str], None] | None = print):
        if len(examples) == 0:
            raise ValueError("InstructionTrainer needs at least one encoded example")
        context = model.config.context_length
        too_long = [k for k, e in enumerate(examples) if len(e.ids) > context + 1]
        if too_long:
            raise ValueError(f"examples {too_long[:5]} have more than context_length + 1 = "
                             f"{context + 1} ids; encode them with this model's context length")
        self.n_replay = replay_rows(config.batch_size, config.replay_fraction)
        if self.n_replay and replay_tokens is None:
            raise ValueError(f"replay_fraction {config.replay_fraction} needs replay_tokens "
                             f"(the pretraining training tokens)")
        if self.n_replay and len(replay_tokens) <= context:
            raise ValueError(f"replay_tokens has {len(replay_tokens)} tokens, fewer than one window "
                             f"of context_length + 1 = {context + 1}")
        groups = weight_decay_groups(model, config.weight_decay)
        if not any(group["params"] for group in groups):
            raise ValueError("the model has no trainable parameters (every parameter is frozen)")
        self.model, self.examples, self.config, self.pad_id = model, list(examples), config, pad_id
        self.replay_tokens, self.val_tokens, self.log = replay_tokens, val_tokens, log
        self.optimizer = AdamW(groups, lr=config.learning_rate, betas=config.betas)
        self.rng = np.random.default_rng(config.seed)
        self.order, self.cursor = self.rng.permutation(len(self.examples)), 0
        self.step = 0
        self.history = InstructHistory()

    def next_examples(self, n: int) -> list[EncodedExample]:
        """The next ``n`` examples of the shuffled pass, starting a new pass when one ends."""
        chosen = []
        while len(chosen) < n:
            if self.cursor == len(self.order):
                self.order, self.cursor = self.rng.permutation(len(self.examples)), 0
            take = min(n - len(chosen), len(self.order) - self.cursor)
            chosen += [self.examples[i] for i in self.order[self.cursor:self.cursor + take]]
            self.cursor += take
        return chosen

    def step_loss(self):
        """(loss, instruction loss, replay loss or None) of the next batch, as Tensors."""
        c = self.config
        inputs, targets = collate(self.next_examples(c.batch_size - self.n_replay), self.pad_id)
        _, instruction = self.model(inputs, targets)
        if not self.n_replay:
            return instruction, instruction, None
        windows, next_tokens = random_batch(self.replay_tokens, self.n_replay,
                                            self.model.config.context_length, self.rng)
        _, replay = self.model(windows, next_tokens)
        w = self.n_replay / c.batch_size
        return instruction * (1 - w) + replay * w, instruction, replay

    def learning_rate(self, step: int) -> float:
        c = self.config
        return cosine_schedule(step, c.learning_rate, c.warmup_steps, c.steps, c.min_learning_rate)

    def train_step(self) -> float:
        loss, instruction, replay = self.step_loss()
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"instruction-tuning loss became {value} at step {self.step}; "
                                     f"lower the learning rate (now {self.optimizer.lr:.3g})")
        self.optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(self.optimizer.parameters(), self.config.grad_clip)
        self.optimizer.lr = self.learning_rate(self.step)
        self.optimizer.step()
        self.step += 1
        h = self.history
        h.steps.append(self.step)
        h.loss.append(value)
        h.instruction_loss.append(instruction.item())
        h.replay_loss.append(replay.item() if replay is not None else float("nan"))
        return value

    def evaluate(self) -> float | None:
        """Perplexity on ``val_tokens`` (recorded in the history), or None without them."""
        if self.val_tokens is None:
            return None
        value = perplexity(self.model, self.val_tokens)
        self.history.eval_steps.append(self.step)
        self.history.val_perplexity.append(value)
        return value

    def train(self, steps: int | None = None) -> InstructHistory:
        """Train ``steps`` more steps (default: up to ``config.steps``); evaluates before the
        first step, every ``eval_interval`` steps and after the last."""
        c = self.config
        end = c.steps if steps is None else min(c.steps, self.step + steps)
        if self.step == 0 and not self.history.eval_steps:
            self.evaluate()
        self.model.train()
        for _ in range(self.step, end):
            start = time.perf_counter()
            loss = self.train_step()
            self.history.seconds += time.perf_counter() - start
            ppl = self.evaluate() if (self.step % c.eval_interval == 0 or self.step == end) else None
            if self.log is not None and (self.step % c.log_interval == 0 or self.step == end):
                extra = f" | validation perplexity {ppl:.1f}" if ppl is not None else ""
                self.log(f"step {self.step:4d}/{end} | loss {loss:.3f}{extra} | "
                         f"{self.history.seconds:.0f} s")
        return self.history


# ----------------------------------------------------------------------------------------------
# Answering and scoring


def stop_token_ids(tokenizer: BPETokenizer) -> list[int]:
    """``<|endoftext|>`` and every token whose bytes contain a line break: an answer is one line."""
    special = set(tokenizer.special_tokens.values())  # their "bytes" are their names
    stops = {tokenizer.eot_id}
    stops.update(i for i in range(tokenizer.vocab_size)
                 if i not in special and b"\n" in tokenizer.token_bytes(i))
    return sorted(stops)


def generate_responses(model, tokenizer: BPETokenizer, examples: Sequence[InstructionExample],
                       template: PromptTemplate = DEFAULT_TEMPLATE, max_new_tokens: int = 16,
                       batch_size: int = 32, use_cache: bool = True) -> list[str]:
    """The model's greedy answer to each example's prompt (``use_cache``: see ``generate``).

    Decoding stops at ``<|endoftext|>`` or at the first token that contains a line break, and
    the answer is the text before that break, stripped of surrounding whitespace (or what was
    generated when ``max_new_tokens`` ran out). Prompts of the same token length are answered
    together in one batch (right padding would put pads before the answer)."""
    stops = stop_token_ids(tokenizer)
    prompts = [tokenizer.encode(example.prompt(template)) for example in examples]
    context = model.config.context_length
    too_long = [k for k, p in enumerate(prompts) if len(p) > context]
    if too_long:
        raise PromptTooLongError(f"prompts {too_long[:5]} are longer than the context length {context}")
    answers: list[str] = [""] * len(examples)
    by_length: dict[int, list[int]] = {}
    for k, prompt in enumerate(prompts):
        by_length.setdefault(len(prompt), []).append(k)
    for length, members in by_length.items():
        for start in range(0, len(members), batch_size):
            rows = members[start:start + batch_size]
            out = generate(model, np.array([prompts[k] for k in rows]), max_new_tokens,
                           temperature=0.0, stop_tokens=stops, use_cache=use_cache)
            for k, generated in zip(rows, out[:, length:]):
                kept = []
                for token in generated.tolist():
                    if token == tokenizer.eot_id:
                        break
                    kept.append(token)
                    if token in stops:
                        break
                answers[k] = tokenizer.decode(kept).split("\n", 1)[0].strip()
    return answers


def normalize_answer(text: str) -> str:
    """The form in which answers are compared: case-folded, every run of whitespace one space,
    no surrounding whitespace, and one final period dropped. Quotes and other punctuation stay:
    'The "for" statement' and 'The for statement' are different answers.

        >>> normalize_answer('  The "FOR"\\n statement. ')
        'the "for" statement'
    """
    if not isinstance(text, str):
        raise TypeError(f"an answer must be a str, got {type(text).__name__}")
    text = " ".join(text.split()).casefold()
    return text[:-1].rstrip() if text.endswith(".") else text


def exact_match(prediction: str, reference: str) -> bool:
    """True when both answers are equal after ``normalize_answer``."""
    return normalize_answer(prediction) == normalize_answer(reference)


@dataclass(frozen=True)
class ResponseScores:
    """Mean exact match and mean ROUGE-L F1 (``metrics.rouge_l``) over ``count`` answers."""

    exact_match: float
    rouge_l: float
    count: int


def score_responses(predictions: Sequence[str], references: Sequence[str]) -> ResponseScores:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if len(predictions) == 0:
        raise ValueError("there are no answers to score")
    matches = [exact_match(p, r) for p, r in zip(predictions, references)]
    rouge = [rouge_l(p, r).f1 for p, r in zip(predictions, references)]
    return ResponseScores(float(np.mean(matches)), float(np.mean(rouge)), len(predictions))


@dataclass(frozen=True)
class ResponseEvaluation:
    """Examples with the model's answers; ``scores`` of all of them or of those ``keep`` selects."""

    examples: tuple[InstructionExample, ...]
    predictions: tuple[str, ...]

    def scores(self, keep: Callable[[InstructionExample], bool] | None = None) -> ResponseScores:
        pairs = [(p, e.response) for e, p in zip(self.examples, self.predictions)
                 if keep is None or keep(e)]
        if not pairs:
            raise ValueError("no example is selected, so there is nothing to score")
        return score_responses([p for p, _ in pairs], [r for _, r in pairs])


def evaluate_responses(model, tokenizer: BPETokenizer, examples: Sequence[InstructionExample],
                       template: PromptTemplate = DEFAULT_TEMPLATE,
                       max_new_tokens: int = 16) -> ResponseEvaluation:
    """Greedy answers to ``examples`` (``generate_responses``) with their references."""
    predictions = generate_responses(model, tokenizer, examples, template, max_new_tokens)
    return ResponseEvaluation(tuple(examples), tuple(predictions))
