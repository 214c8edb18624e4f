"""Instruction data: questions with checkable answers made from the corpus, and their batches (lesson 11).

A pretrained model continues text; it does not know that some text is a question and the next
part should be its answer. Instruction tuning shows it thousands of (prompt, response) pairs in
one fixed layout, the *template*, and trains it to produce the response:

    ### Instruction:
    Name the topic of this passage.

    ### Input:
    The "for" statement is used to iterate over the elements of a sequence ...

    ### Response:
    The "for" statement<|endoftext|>

The lesson uses four parts; this module holds the first two (``instruction_tuning`` the other two):

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

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core import functional as F
from ..text.bpe import BPETokenizer
from ..text.corpus import Document

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
    with model.inference():
        for start in range(0, len(encoded), batch_size):
            inputs, targets = collate(encoded[start:start + batch_size], pad_id)
            loss = F.cross_entropy(model(inputs), targets, reduction="sum")
            total += float(loss.item())
            count += int((targets != IGNORE_INDEX).sum())
    if count == 0:
        raise ValueError("response_loss: there are no response tokens to score")
    return total / count
