"""Instruction fine-tuning: the template, the dataset and its splits, batching with the loss
masked to the response, truncation, replay, answer scoring, and a tiny end-to-end tune."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig, BPETokenizer, Module, Tensor, functional as F
from tinygrad_llm.evaluate import answers
from tinygrad_llm.finetune import instruction_data, instruction_tuning
from tinygrad_llm.text.corpus import Document, corpus_text, embedded_documents
from tinygrad_llm.text.data import encode_documents
from tinygrad_llm.finetune.instruction_data import (DEFAULT_TEMPLATE, IGNORE_INDEX, EncodedExample,
                                                    InstructionExample, PromptTemplate, PromptTooLongError,
                                                    build_instruction_data, collate, corpus_passages,
                                                    encode_example, encode_examples, passage_examples,
                                                    response_loss, section_owners, validation_topics)
from tinygrad_llm.finetune.instruction_tuning import (InstructConfig, InstructionTrainer, ResponseEvaluation,
                                                      generate_responses, replay_rows, stop_token_ids)
from tinygrad_llm.evaluate.answers import exact_match, normalize_answer, score_responses

EOT = "<|endoftext|>"

# A small corpus in the documentation's format: a title underlined with *, sections with =.
DOCS = [
    Document("alpha", "Alpha things\n************\n\nthe alpha value is one and the alpha flag is set "
                      "when the alpha loop runs over every item in order"),
    Document("beta", "Beta things\n***********\n\nbeta tokens flow into the beta queue and wait\n\n"
                     "Beta limits\n===========\n\nthe beta queue holds at most eight tokens before it "
                     "blocks the writer"),
    Document("gamma", "Gamma things\n************\n\ngamma rays pass the gamma gate and gamma "
                      "counters count them one by one"),
    Document("delta", "Delta things\n************\n\ndelta moves are small steps that delta solvers "
                      "take toward the answer"),
]


@pytest.fixture(scope="module")
def tokenizer() -> BPETokenizer:
    prompts = "".join(PromptTemplate().format_prompt(i.format(n=2), "x") for i in instruction_data.INSTRUCTIONS.values())
    return BPETokenizer.train(corpus_text(DOCS) + prompts, vocab_size=320, pattern="gpt4",
                              special_tokens=(EOT,))


def tiny_gpt(vocab_size: int, context_length: int = 64, seed: int = 0) -> GPT:
    config = GPTConfig(vocab_size=vocab_size, context_length=context_length, d_model=32, n_layer=1, n_head=2)
    return GPT(config, rng=np.random.default_rng(seed))


def example(response="yes", instruction="Answer.", input="", task="topic") -> InstructionExample:
    return InstructionExample(instruction=instruction, input=input, response=response, task=task, topic="t")


def test_module_docstring_examples_run():
    results = [doctest.testmod(module) for module in (instruction_data, instruction_tuning, answers)]
    assert sum(r.attempted for r in results) >= 5 and sum(r.failed for r in results) == 0


# ----------------------------------------------------------------------------------------------
# The template


def test_template_lays_out_instruction_input_and_response_header():
    prompt = DEFAULT_TEMPLATE.format_prompt("Name the topic.", "Some passage.")
    assert prompt == "### Instruction:\nName the topic.\n\n### Input:\nSome passage.\n\n### Response:\n"


def test_template_without_input_leaves_the_input_block_out():
    assert DEFAULT_TEMPLATE.format_prompt("Say hi.") == "### Instruction:\nSay hi.\n\n### Response:\n"
    assert PromptTemplate.compact().format_prompt("Topic?", "a b c") == "Topic?\na b c\n=\n"


def test_example_prompt_uses_the_given_template():
    e = example(input="words")
    assert e.prompt() == DEFAULT_TEMPLATE.format_prompt("Answer.", "words")
    assert e.prompt(PromptTemplate.compact()) == "Answer.\nwords\n=\n"


@pytest.mark.parametrize("instruction", ["", "   ", None])
def test_template_rejects_an_empty_instruction(instruction):
    with pytest.raises(ValueError, match="instruction must be a non-empty string"):
        DEFAULT_TEMPLATE.format_prompt(instruction, "x")


# ----------------------------------------------------------------------------------------------
# Passages and examples


def test_a_section_shared_by_two_documents_belongs_to_the_one_with_fewer_sections():
    big = Document("big", "Big\n***\n\nintro words\n\nShared\n======\n\nshared body text")
    small = Document("small", "Shared\n******\n\nshared body text")
    owners = section_owners([big, small])
    assert owners == {"intro words": "big", "shared body text": "small"}
    passages = corpus_passages([big, small], passage_words=2, answer_words=1)
    # "intro words" is shorter than one chunk of 3 words; the shared section appears once
    assert [(p.topic, p.text, p.next_words) for p in passages] == [("small", "shared body", "text")]


def test_passages_are_consecutive_chunks_with_whitespace_collapsed():
    doc = Document("d", "Title\n*****\n\none two\n   three four\nfive six seven eight nine")
    passages = corpus_passages([doc], passage_words=3, answer_words=1)
    assert [(p.id, p.text, p.next_words) for p in passages] == [
        ("d/0/0", "one two three", "four"), ("d/0/1", "five six seven", "eight")]  # "nine" is left over
    assert all(p.topic_title == "Title" and p.section_title == "Title" for p in passages)


def test_a_repeated_passage_text_is_kept_once():
    doc = Document("d", "T\n*\n\na b c a b d")
    assert [p.text for p in corpus_passages([doc], passage_words=2, answer_words=1)] == ["a b"]


def test_passage_examples_ask_topic_section_and_continuation():
    beta = corpus_passages(DOCS, passage_words=4, answer_words=2)
    limits = next(p for p in beta if p.section_title == "Beta limits")
    examples = passage_examples(limits)
    assert [(e.task, e.response) for e in examples] == [
        ("topic", "Beta things"), ("section", "Beta limits"), ("continue", limits.next_words)]
    assert examples[2].instruction == "Continue the passage with the next 2 words."
    assert all(e.input == limits.text and e.passage == limits.id and e.topic == "beta" for e in examples)
    first = next(p for p in beta if p.section_title == "Beta things")
    assert [e.task for e in passage_examples(first)] == ["topic", "continue"]  # section = topic title


def test_passage_examples_take_custom_instructions_and_reject_unknown_tasks():
    passage = corpus_passages(DOCS, 4, 2)[0]
    examples = passage_examples(passage, tasks=("topic",), instructions={"topic": "Topic?"})
    assert [e.instruction for e in examples] == ["Topic?"]
    with pytest.raises(ValueError, match="unknown task 'summary'"):
        passage_examples(passage, tasks=("summary",))


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_corpus_passages_rejects_bad_word_counts(value):
    with pytest.raises(ValueError, match="passage_words must be a positive integer"):
        corpus_passages(DOCS, passage_words=value, answer_words=2)


# ----------------------------------------------------------------------------------------------
# Splits


@pytest.fixture(scope="module")
def embedded():
    return embedded_documents()


def test_the_dataset_is_deterministic(embedded):
    first = build_instruction_data(embedded, held_out_topics=["while", "yield"], seed=3)
    second = build_instruction_data(embedded, held_out_topics=["yield", "while"], seed=3)
    assert first == second and len(first.train) > 1000


def test_train_and_held_out_share_no_passage_and_unseen_topics_stay_out_of_training(embedded):
    data = build_instruction_data(embedded, held_out_topics=["while", "with"], held_out_fraction=0.2)
    train_passages = {e.passage for e in data.train}
    held_passages = {e.passage for e in data.held_out}
    assert train_passages.isdisjoint(held_passages)
    assert {e.input for e in data.train}.isdisjoint({e.input for e in data.held_out})
    assert not {e.topic for e in data.train} & {"while", "with"}
    unseen = [e for e in data.held_out if not data.seen_topic(e)]
    seen = [e for e in data.held_out if data.seen_topic(e)]
    assert {e.topic for e in unseen} == {"while", "with"} and len(seen) > len(unseen)
    # about 20% of the training topics' passages are held out
    n_seen_passages = len(train_passages) + len({e.passage for e in seen})
    assert len({e.passage for e in seen}) == round(0.2 * n_seen_passages)


def test_another_seed_splits_the_same_examples_differently(embedded):
    first = build_instruction_data(embedded, seed=0)
    second = build_instruction_data(embedded, seed=1)
    assert {e.passage for e in first.train} != {e.passage for e in second.train}
    assert sorted(map(repr, first.train + first.held_out)) == sorted(map(repr, second.train + second.held_out))


def test_summary_counts_examples_per_group_and_task():
    data = build_instruction_data(DOCS, passage_words=4, answer_words=2, held_out_topics=["delta"],
                                  held_out_fraction=0.0)
    summary = data.summary()
    assert summary["held-out, seen topics"] == {"topic": 0, "section": 0, "continue": 0}
    assert summary["held-out, unseen topics"]["topic"] == len(corpus_passages(DOCS[3:], 4, 2))
    assert sum(summary["train"].values()) == len(data.train)


def test_dataset_errors_are_named(embedded):
    with pytest.raises(ValueError, match=r"held_out_topics \['nope'\] are not documents"):
        build_instruction_data(DOCS, held_out_topics=["nope"])
    with pytest.raises(ValueError, match="held_out_fraction must be in"):
        build_instruction_data(DOCS, held_out_fraction=1.0)
    with pytest.raises(ValueError, match="unknown tasks"):
        build_instruction_data(DOCS, tasks=("topic", "poem"))
    with pytest.raises(ValueError, match="nothing is left to train on"):
        build_instruction_data(DOCS, passage_words=4, held_out_topics=[d.name for d in DOCS])


def test_validation_topics_are_the_documents_that_reach_the_validation_tokens(tokenizer):
    tokens = encode_documents(tokenizer, DOCS)
    lengths = [len(tokenizer.encode(d.text)) for d in DOCS]
    start_of_gamma = lengths[0] + lengths[1] + 2  # two separators before it
    assert tokens[start_of_gamma - 1] == tokenizer.eot_id
    assert validation_topics(DOCS, tokenizer, start_of_gamma) == ["gamma", "delta"]
    assert validation_topics(DOCS, tokenizer, start_of_gamma - 2) == ["beta", "gamma", "delta"]
    assert validation_topics(DOCS, tokenizer, len(tokens) - 1) == ["delta"]


# ----------------------------------------------------------------------------------------------
# Encoding, truncation and batching


def test_encode_example_is_prompt_then_response_then_end_of_text(tokenizer):
    e = example(response="beta queue", input="alpha value")
    encoded = encode_example(tokenizer, e, context_length=64)
    prompt = tokenizer.encode(e.prompt())
    assert encoded.ids.tolist() == prompt + tokenizer.encode("beta queue") + [tokenizer.eot_id]
    assert encoded.prompt_length == len(prompt) and encoded.example is e
    assert encoded.response_ids.tolist() == tokenizer.encode("beta queue") + [tokenizer.eot_id]


def test_truncation_cuts_the_response_and_never_the_prompt(tokenizer):
    e = example(response="the alpha loop runs over every item", input="beta")
    full = encode_example(tokenizer, e, context_length=64)
    P = full.prompt_length
    assert len(full.ids) - P >= 4
    cut = encode_example(tokenizer, e, context_length=P + 2)  # room for 3 more ids after the prompt
    assert cut.ids.tolist() == full.ids[:P + 3].tolist() and tokenizer.eot_id not in cut.ids.tolist()
    exact = encode_example(tokenizer, e, context_length=P)   # a prompt of exactly the context fits
    assert exact.ids.tolist() == full.ids[:P + 1].tolist()
    with pytest.raises(PromptTooLongError, match=rf"prompt \(topic on 't'\) is {P} tokens, more than "
                                                 rf"the context length {P - 1}"):
        encode_example(tokenizer, e, context_length=P - 1)


def test_encode_examples_can_skip_the_prompts_that_do_not_fit(tokenizer):
    short, long = example(input="a"), example(input="alpha beta gamma delta " * 5)
    limit = encode_example(tokenizer, short, 64).prompt_length
    with pytest.raises(PromptTooLongError):
        encode_examples(tokenizer, [short, long], context_length=limit)
    kept = encode_examples(tokenizer, [short, long], context_length=limit, skip_too_long=True)
    assert [k.example for k in kept] == [short]


def test_collate_pads_on_the_right_and_counts_exactly_the_response_positions():
    # ids:      p p p r r E        prompt 3, response 2, end of text E = 9
    # position: 0 1 2 3 4          targets ids[1:]; counted from position prompt_length - 1 = 2
    a = EncodedExample(np.array([1, 2, 3, 4, 5, 9]), prompt_length=3)
    b = EncodedExample(np.array([6, 7, 8, 9]), prompt_length=2)  # prompt 2, response 1 + E
    inputs, targets = collate([a, b], pad_id=9)
    assert inputs.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 9]]
    assert targets.tolist() == [[-100, -100, 4, 5, 9], [-100, 8, 9, -100, -100]]
    assert inputs.dtype == targets.dtype == np.int64
    counted = targets != IGNORE_INDEX
    assert counted.sum(axis=1).tolist() == [3, 2]  # response tokens + the end-of-text token


def test_collate_errors_are_named():
    with pytest.raises(ValueError, match="at least one example"):
        collate([], pad_id=0)
    with pytest.raises(ValueError, match="example 0: prompt_length 3 leaves no response token"):
        collate([EncodedExample(np.array([1, 2, 3]), prompt_length=3)], pad_id=0)


def test_the_masked_loss_is_the_mean_over_response_tokens_only(tokenizer):
    model = tiny_gpt(tokenizer.vocab_size)
    rows = [encode_example(tokenizer, example(response=r, input=i), 64)
            for r, i in (("beta queue", "alpha"), ("one", "gamma rays pass the gate"))]
    inputs, targets = collate(rows, tokenizer.eot_id)
    _, loss = model(inputs, targets)
    logp = F.log_softmax(model(inputs)).data  # (B, L, V)
    picked = [logp[b, t, targets[b, t]] for b, t in zip(*np.nonzero(targets != IGNORE_INDEX))]
    assert len(picked) == sum(len(r.ids) - r.prompt_length for r in rows)
    assert loss.item() == pytest.approx(-np.mean(picked), rel=1e-5)
    # the padding token's value changes nothing: real positions never attend to later ones
    other_inputs, _ = collate(rows, pad_id=0)
    assert model(other_inputs, targets)[1].item() == pytest.approx(loss.item(), rel=1e-6)
    assert response_loss(model, rows, tokenizer.eot_id, batch_size=1) == pytest.approx(loss.item(), rel=1e-5)


# ----------------------------------------------------------------------------------------------
# Replay and the trainer


def test_replay_rows_rounds_the_fraction_of_the_batch():
    assert [replay_rows(16, f) for f in (0.0, 0.25, 0.5, 0.1)] == [0, 4, 8, 2]
    with pytest.raises(ValueError, match=r"replay_fraction must be a finite number in \[0, 1\)"):
        replay_rows(16, 1.0)
    with pytest.raises(ValueError, match="0.01 of a batch of 16 is 0 rows"):
        replay_rows(16, 0.01)
    with pytest.raises(ValueError, match="0.9 of a batch of 4 is 4 rows"):
        replay_rows(4, 0.9)
    with pytest.raises(ValueError, match="replay_fraction"):
        InstructConfig(batch_size=4, replay_fraction=0.9)


class RecordingGPT(GPT):
    """A GPT that remembers the shape of every batch it is given with targets."""

    def forward(self, idx, targets=None, cache=None):
        if targets is not None:
            self.seen.append((np.asarray(idx).copy(), np.asarray(targets).copy()))
        return super().forward(idx, targets, cache)


def encoded_rows(tokenizer, n: int = 6, context_length: int = 64) -> list[EncodedExample]:
    data = build_instruction_data(DOCS, passage_words=4, answer_words=2, held_out_fraction=0.0)
    return encode_examples(tokenizer, data.train[:n], context_length)


def test_each_step_mixes_the_replay_fraction_of_pretraining_windows(tokenizer):
    config = GPTConfig(vocab_size=tokenizer.vocab_size, context_length=64, d_model=32, n_layer=1, n_head=2)
    model = RecordingGPT(config, rng=np.random.default_rng(0))
    model.seen = []
    replay = np.arange(1000, dtype=np.uint16) % 250
    trainer = InstructionTrainer(model, encoded_rows(tokenizer), InstructConfig(batch_size=8, replay_fraction=0.25),
                                 pad_id=tokenizer.eot_id, replay_tokens=replay, log=None)
    loss, instruction, replay_loss = trainer.step_loss()
    (inputs, targets), (windows, next_tokens) = model.seen
    assert inputs.shape[0] == 6 and windows.shape == next_tokens.shape == (2, 64)
    assert (targets == IGNORE_INDEX).any() and (next_tokens != IGNORE_INDEX).all()
    assert np.array_equal(next_tokens, (windows + 1) % 250)  # plain next-token windows of the replay text
    assert loss.item() == pytest.approx(0.75 * instruction.item() + 0.25 * replay_loss.item(), rel=1e-6)


def test_without_replay_the_whole_batch_is_instructions(tokenizer):
    trainer = InstructionTrainer(tiny_gpt(tokenizer.vocab_size), encoded_rows(tokenizer),
                                 InstructConfig(batch_size=4), pad_id=tokenizer.eot_id, log=None)
    loss, instruction, replay = trainer.step_loss()
    assert replay is None and loss is instruction
    assert trainer.n_replay == 0


def test_examples_are_drawn_in_shuffled_passes_each_example_once_per_pass(tokenizer):
    rows = encoded_rows(tokenizer)
    trainer = InstructionTrainer(tiny_gpt(tokenizer.vocab_size), rows, InstructConfig(batch_size=4),
                                 pad_id=tokenizer.eot_id, log=None)
    drawn = [id(e) for e in trainer.next_examples(2 * len(rows))]
    assert sorted(drawn[:len(rows)]) == sorted(drawn[len(rows):]) == sorted(map(id, rows))


def test_trainer_errors_are_named(tokenizer):
    model = tiny_gpt(tokenizer.vocab_size)
    rows = encoded_rows(tokenizer)
    with pytest.raises(ValueError, match="needs replay_tokens"):
        InstructionTrainer(model, rows, InstructConfig(batch_size=4, replay_fraction=0.25), log=None)
    with pytest.raises(ValueError, match="fewer than one window"):
        InstructionTrainer(model, rows, InstructConfig(batch_size=4, replay_fraction=0.25),
                           replay_tokens=np.arange(10), log=None)
    with pytest.raises(ValueError, match="at least one encoded example"):
        InstructionTrainer(model, [], log=None)
    with pytest.raises(ValueError, match="encode them with this model's context length"):
        InstructionTrainer(tiny_gpt(tokenizer.vocab_size, context_length=8), rows, log=None)
    with pytest.raises(ValueError, match="no trainable parameters"):
        InstructionTrainer(tiny_gpt(tokenizer.vocab_size).requires_grad_(False), rows, log=None)
    with pytest.raises(ValueError, match="InstructConfig.steps must be an integer >= 1"):
        InstructConfig(steps=0)


def test_a_tiny_instruction_tune_lowers_the_masked_loss_and_measures_forgetting(tokenizer):
    rows = encoded_rows(tokenizer, n=12)
    model = tiny_gpt(tokenizer.vocab_size)
    before = response_loss(model, rows, tokenizer.eot_id)
    pretraining = encode_documents(tokenizer, DOCS)
    config = InstructConfig(steps=40, batch_size=8, learning_rate=1e-2, warmup_steps=5,
                            replay_fraction=0.25, eval_interval=20, log_interval=20)
    lines = []
    trainer = InstructionTrainer(model, rows, config, pad_id=tokenizer.eot_id, replay_tokens=pretraining,
                                 val_tokens=pretraining, log=lines.append)
    history = trainer.train()
    after = response_loss(model, rows, tokenizer.eot_id)
    assert after < 0.5 * before, (before, after)
    assert history.steps == list(range(1, 41)) and len(history.replay_loss) == 40
    assert history.eval_steps == [0, 20, 40] and len(history.val_perplexity) == 3
    assert history.seconds > 0 and len(lines) == 2 and "validation perplexity" in lines[-1]
    assert model.training  # left in training mode, as Trainer does


def test_a_tune_is_reproducible_with_the_same_seed(tokenizer):
    def run(seed):
        trainer = InstructionTrainer(tiny_gpt(tokenizer.vocab_size), encoded_rows(tokenizer),
                                     InstructConfig(steps=3, batch_size=4, seed=seed),
                                     pad_id=tokenizer.eot_id, log=None)
        return trainer.train().loss
    assert run(0) == run(0) and run(0) != run(1)


def test_only_trainable_parameters_change(tokenizer):
    model = tiny_gpt(tokenizer.vocab_size)
    model.requires_grad_(False)
    model.final_norm.requires_grad_(True)
    frozen = model.blocks[0].mlp.up.weight.data.copy()
    InstructionTrainer(model, encoded_rows(tokenizer), InstructConfig(steps=2, batch_size=4),
                       pad_id=tokenizer.eot_id, log=None).train()
    assert np.array_equal(model.blocks[0].mlp.up.weight.data, frozen)
    assert not np.allclose(model.final_norm.weight.data, 1.0)


# ----------------------------------------------------------------------------------------------
# Answers and scores


class ScriptedModel(Module):
    """Stands in for a GPT in ``generate``: whatever the prompt, it emits ``script`` token by
    token. It keeps the KV-cache contract of ``GPT.forward`` (a call sees only new tokens and
    advances ``cache.length`` by them); a call on an empty cache is a new prompt."""

    def __init__(self, script: list[int], vocab_size: int, context_length: int = 64):
        self.config = GPTConfig(vocab_size=vocab_size, context_length=context_length, d_model=4,
                                n_layer=1, n_head=1)
        self.script, self.prompt_length, self.training = script, 0, False

    def output_weight(self) -> Tensor:
        return Tensor(np.zeros((1, 1), dtype=np.float32))

    def __call__(self, idx, cache=None):
        B, T = idx.shape
        if cache.length == 0:
            self.prompt_length = T
        step = cache.length + T - self.prompt_length  # tokens generated so far
        cache.length += T
        logits = np.zeros((B, T, self.config.vocab_size), dtype=np.float32)
        logits[:, -1, self.script[min(step, len(self.script) - 1)]] = 10.0
        return Tensor(logits)


def test_stop_tokens_are_end_of_text_and_every_token_with_a_line_break(tokenizer):
    stops = stop_token_ids(tokenizer)
    assert tokenizer.eot_id in stops
    for token_id in range(tokenizer.vocab_size):
        if token_id != tokenizer.eot_id:
            assert (token_id in stops) == (b"\n" in tokenizer.token_bytes(token_id))


@pytest.mark.parametrize("generated, expected", [
    ("the beta queue", "the beta queue"),           # max_new_tokens runs out
    ("  the beta queue\nmore text", "the beta queue"),  # cut at the line break, stripped
    ("alpha<|endoftext|>beta", "alpha"),            # end of text stops it
    ("\nalpha", ""),                                # an immediate line break: an empty answer
])
def test_greedy_answers_stop_at_end_of_text_or_a_line_break(tokenizer, generated, expected):
    script = tokenizer.encode(generated, allowed_special="all")
    model = ScriptedModel(script, tokenizer.vocab_size)
    answers = generate_responses(model, tokenizer, [example(input="alpha")], max_new_tokens=len(script))
    assert answers == [expected]


def test_prompts_of_different_lengths_are_answered_each_in_its_own_batch(tokenizer):
    model = ScriptedModel(tokenizer.encode("gamma gate\n"), tokenizer.vocab_size)
    examples = [example(input="a"), example(input="alpha beta gamma"), example(input="b")]
    assert generate_responses(model, tokenizer, examples, max_new_tokens=8) == ["gamma gate"] * 3
    with pytest.raises(PromptTooLongError, match="longer than the context length 4"):
        generate_responses(ScriptedModel([1], tokenizer.vocab_size, context_length=4), tokenizer, examples)


@pytest.mark.parametrize("prediction, reference, same", [
    ('The "for" statement', 'The "for" statement', True),
    ('  the  "FOR"\n statement. ', 'The "for" statement', True),   # case, whitespace, final period
    ("The for statement", 'The "for" statement', False),           # quotes count
    ("statement", 'The "for" statement', False),
    ("", "", True),
    ("a b.", "a b", True),
    ("a b..", "a b", False),                                       # only one final period goes
])
def test_exact_match_compares_normalised_answers(prediction, reference, same):
    assert exact_match(prediction, reference) is same


def test_normalize_answer_rejects_non_strings():
    with pytest.raises(TypeError, match="an answer must be a str"):
        normalize_answer(None)


def test_scores_are_mean_exact_match_and_mean_rouge_l():
    scores = score_responses(["the alpha flag", "beta"], ["the alpha flag", "gamma rays"])
    assert scores.exact_match == 0.5 and scores.count == 2
    assert scores.rouge_l == pytest.approx(0.5)  # 1.0 and 0.0
    partial = score_responses(["the alpha value"], ["the alpha flag is set"])  # LCS 2 of 3 and 5 words
    assert partial.rouge_l == pytest.approx(2 * (2 / 3) * (2 / 5) / (2 / 3 + 2 / 5))
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        score_responses(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no answers to score"):
        score_responses([], [])


def test_an_evaluation_scores_any_subset_of_its_examples():
    examples = (example("one", task="topic"), example("two words", task="continue"))
    evaluation = ResponseEvaluation(examples, ("one", "two"))
    assert evaluation.scores().exact_match == 0.5
    assert evaluation.scores(lambda e: e.task == "topic").exact_match == 1.0
    with pytest.raises(ValueError, match="no example is selected"):
        evaluation.scores(lambda e: e.task == "section")
