"""Classification fine-tuning: the topic task (deterministic, disjoint splits, correct labels,
class balance, clear errors), the NumPy baselines, pooling with padding, freezing (no gradients
and less memory for frozen parameters), gradient checks of the classifier, and a tiny fine-tune."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig, CharTokenizer, functional as F
from tinygrad_llm.finetune.classifier import (ClassifierHead, FineTuneConfig, GPTClassifier, extract_features,
                                         freeze, pad_batch, padding_attention_mask, pool, predict_logits,
                                         train_classifier)
from tinygrad_llm.scale.memory import gradient_bytes, peak_memory, saved_activation_bytes
from tinygrad_llm.text.corpus import Document, embedded_documents
from tinygrad_llm.core.gradcheck import gradcheck
from tinygrad_llm.finetune.topic_task import SPLITS, passage_starts, select_topics, topic_classification_task
from tinygrad_llm.finetune.baselines import (KeywordRule, SoftmaxRegression, bag_of_words, best_keyword_rule,
                                             majority_class, word_vocabulary, words)
from tinygrad_llm.core.tensor import Tensor

# ----------------------------------------------------------------------------------------------
# The task


def _topic_text(seed: int, n_words: int, vocabulary: list[str]) -> str:
    rng = np.random.default_rng(seed)
    lines = [" ".join(rng.choice(vocabulary, size=8)) for _ in range(n_words // 8)]
    return "\n".join(lines)


# Three topics of different sizes with their own words, and a fourth that reprints the largest.
WORDS = [["alpha", "beta", "gamma", "delta"], ["red", "green", "blue", "cyan"],
         ["one", "two", "three", "four"]]
DOCUMENTS = [Document("big", _topic_text(0, 800, WORDS[0])),
             Document("middle", _topic_text(1, 600, WORDS[1])),
             Document("small", _topic_text(2, 400, WORDS[2]))]
DOCUMENTS.append(Document("reprint", "\n".join(DOCUMENTS[0].text.splitlines()[:60])))
TOKENIZER = CharTokenizer.from_text("".join(d.text for d in DOCUMENTS))


def make_task(**changes):
    settings = dict(documents=DOCUMENTS, segment_windows=2, gap=8)
    settings.update(changes)
    return topic_classification_task(TOKENIZER, settings.pop("num_classes", 3),
                                     settings.pop("passage_length", 64), **settings)


def test_task_is_deterministic():
    first, second = make_task(), make_task()
    for name in SPLITS:
        a, b = first.split(name), second.split(name)
        assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.starts, b.starts) and a.texts == b.texts


def test_classes_are_the_largest_topics_and_a_reprinted_topic_is_skipped():
    task = make_task()
    # "reprint" is longer than "small" but its lines all come from "big"
    assert len(DOCUMENTS[3].text) > len(DOCUMENTS[2].text)
    assert task.class_names == ("big", "middle", "small")


def test_the_embedded_corpus_skips_sections_reprinted_under_their_own_key():
    names = [d.name for d in select_topics(embedded_documents(), 8)]
    assert names[:2] == ["specialnames", "compound"]
    assert "customization" not in names and "attribute-access" not in names


def test_labels_name_the_topic_each_passage_was_cut_from():
    task = make_task()
    encoded = {d.name: np.array(TOKENIZER.encode(d.text)) for d in DOCUMENTS}
    for name in SPLITS:
        split = task.split(name)
        assert split.inputs.shape == (len(split), 64) and split.inputs.dtype == np.int64
        for row, label, start, text in zip(split.inputs, split.labels, split.starts, split.texts):
            tokens = encoded[task.class_names[label]]
            assert np.array_equal(row, tokens[start:start + 64])
            assert text == TOKENIZER.decode(row.tolist())


@pytest.mark.parametrize("train_stride", [None, 16])
def test_splits_share_no_text_and_keep_a_gap(train_stride):
    task = make_task(train_stride=train_stride, gap=8)
    for label in range(task.num_classes):
        spans = sorted((int(s), name) for name in SPLITS
                       for s, y in zip(task.split(name).starts, task.split(name).labels) if y == label)
        for (start_a, split_a), (start_b, split_b) in zip(spans, spans[1:]):
            if split_a != split_b:
                assert start_b >= start_a + 64 + 8, f"{split_a} and {split_b} passages closer than the gap"
    texts = {name: set(task.split(name).texts) for name in SPLITS}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["val"]
    assert not texts["val"] & texts["test"]


def test_text_a_topic_repeats_is_dropped_from_evaluation_splits():
    rng = np.random.default_rng(5)
    repeated = "".join(rng.choice(list("abcdefgh \n"), size=720))      # 720 = 10 segments of 2 x 32 + 8
    documents = DOCUMENTS[:2] + [Document("echo", repeated + repeated)]
    tokenizer = CharTokenizer.from_text("".join(d.text for d in documents))
    task = topic_classification_task(tokenizer, 3, 32, documents=documents, segment_windows=2, gap=8)
    assert task.class_names[2] == "echo" and task.duplicates_removed > 0
    train, val, test = (set(task.split(name).texts) for name in SPLITS)
    assert not train & val and not train & test and not val & test
    assert make_task().duplicates_removed == 0


def test_passage_starts_follows_the_pattern_and_overlaps_only_inside_training_segments():
    assert passage_starts(20, 4, segment_windows=1, gap=1, pattern=("train", "val", "test")) == \
        {"train": [0, 15], "val": [5], "test": [10]}
    starts = passage_starts(100, 10, segment_windows=2, gap=5, pattern=("train", "val", "test"),
                            train_stride=5)
    assert starts == {"train": [0, 5, 10, 75, 80, 85], "val": [25, 35], "test": [50, 60]}
    with pytest.raises(ValueError, match="each of"):
        passage_starts(100, 10, pattern=("train", "test"))


def test_class_counts_balance_and_cap():
    task = make_task()
    counts = task.class_counts()
    for name in SPLITS:
        assert counts[name].sum() == len(task.split(name))
        assert np.all(counts[name] > 0)
    assert counts["train"][0] > counts["train"][2]       # the largest topic gives the most passages
    assert "big" in task.counts_table() and "total" in task.counts_table()
    balanced = make_task(balance=True).class_counts()
    for name in SPLITS:
        assert len(set(balanced[name].tolist())) == 1 and balanced[name][0] == counts[name].min()
    capped = make_task(max_per_class=3).class_counts()
    assert all(np.array_equal(capped[name], np.minimum(counts[name], 3)) for name in SPLITS)
    kept = make_task(balance=True).train.starts
    assert np.all(np.diff(kept[make_task(balance=True).train.labels == 0]) > 0)   # corpus order kept


def test_task_errors_are_clear():
    with pytest.raises(ValueError, match="only 3 topics"):
        make_task(num_classes=4)
    with pytest.raises(ValueError, match="do not fit the model's context of 32"):
        make_task(passage_length=64, context_length=32)
    with pytest.raises(ValueError, match="'small' has .* too few"):
        make_task(passage_length=400)
    with pytest.raises(ValueError, match="at least 2 classes"):
        make_task(num_classes=1)


# ----------------------------------------------------------------------------------------------
# Baselines


def test_words_and_bag_of_words():
    assert words("Call x.__init__(self)!") == ["call", "x", "__init__", "self"]
    vocabulary = word_vocabulary(["a b b", "c a"], min_count=2)
    assert vocabulary == {"a": 0, "b": 1}
    assert bag_of_words(["b a b z", ""], vocabulary).tolist() == [[1, 2], [0, 0]]


def test_majority_class_breaks_ties_towards_the_smaller_id():
    assert majority_class(np.array([2, 1, 2, 1, 0])) == 1


def test_best_keyword_rule_finds_the_planted_word_and_matches_brute_force():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    filler = ["the", "a", "of", "in", "to"]
    texts = [" ".join(rng.choice(filler, 6)) + (" zebra" if y == 2 else "") for y in labels]
    rule, accuracy = best_keyword_rule(texts, labels, 3)
    assert rule.word == "zebra" and rule.present_class == 2
    assert accuracy == pytest.approx(np.mean(rule.predict(texts) == labels))
    # brute force over every word and pair of classes
    best = max(np.mean(KeywordRule(w, a, b).predict(texts) == labels)
               for w in word_vocabulary(texts, 2) for a in range(3) for b in range(3))
    assert accuracy == pytest.approx(best)


def test_softmax_regression_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    centres = np.array([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    labels = np.repeat(np.arange(3), 30)
    features = centres[labels] + rng.normal(0.0, 0.5, (90, 2))
    model = SoftmaxRegression(2, 3, l2=1e-3)
    losses = model.fit(features, labels, steps=300)
    assert np.all(np.diff(losses) <= 1e-12), "gradient descent with step 1/L must not increase the loss"
    assert losses[0] == pytest.approx(np.log(3)) and losses[-1] < 0.1
    assert np.mean(model.predict(features) == labels) == 1.0
    assert model.num_parameters == 2 * 3 + 3


def test_softmax_regression_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(7, 4)), rng.integers(0, 3, 7)
    model = SoftmaxRegression(4, 3, l2=0.1)
    model.weight[:], model.bias[:] = rng.normal(size=(4, 3)), rng.normal(size=3)
    _, d_weight, d_bias = model.loss_and_gradients(features, labels)
    for array, analytic in ((model.weight, d_weight), (model.bias, d_bias)):
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            original = array[index]
            array[index] = original + 1e-6
            plus = model.loss_and_gradients(features, labels)[0]
            array[index] = original - 1e-6
            minus = model.loss_and_gradients(features, labels)[0]
            array[index] = original
            numeric[index] = (plus - minus) / 2e-6
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------------------------
# The classifier: shapes, pooling, padding

CONFIG = GPTConfig(vocab_size=16, context_length=8, d_model=16, n_layer=2, n_head=2)


def make_classifier(pooling="last", head="linear", dtype=np.float32, seed=0, config=CONFIG) -> GPTClassifier:
    gpt = GPT(config, rng=np.random.default_rng(seed), dtype=dtype)
    return GPTClassifier(gpt, num_classes=3, pooling=pooling, head=head, hidden=8,
                         rng=np.random.default_rng(seed + 1)).eval()


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_classifier_maps_token_ids_to_one_row_of_logits_per_sequence(pooling, head):
    classifier = make_classifier(pooling, head)
    idx = np.random.default_rng(0).integers(0, 16, (5, 8))
    assert classifier(idx).shape == (5, 3)
    assert classifier.features(idx).shape == (5, 16)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_right_padding_changes_nothing(pooling):
    classifier = make_classifier(pooling, dtype=np.float64)
    sequences = [[3, 1, 4, 1, 5, 9], [2, 6], [5, 3, 5, 8, 9, 7, 9, 3]]
    ids, mask = pad_batch(sequences, pad_id=11)
    batched = classifier(ids, mask).data
    alone = np.concatenate([classifier(np.array([s])).data for s in sequences])
    np.testing.assert_allclose(batched, alone, rtol=1e-10, atol=1e-12)


def test_last_token_pooling_reads_the_last_real_token_and_mean_pooling_skips_pads():
    rng = np.random.default_rng(0)
    hidden = Tensor(rng.normal(size=(2, 4, 3)))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(pool(hidden, mask, "last").data, hidden.data[[0, 1], [1, 3]])
    expected = np.stack([hidden.data[0, :2].mean(axis=0), hidden.data[1].mean(axis=0)])
    np.testing.assert_allclose(pool(hidden, mask, "mean").data, expected)
    changed = hidden.data.copy()
    changed[0, 2:] = 1e6                                   # garbage at the padding positions
    for pooling in ("last", "mean"):
        np.testing.assert_allclose(pool(Tensor(changed), mask, pooling).data,
                                   pool(hidden, mask, pooling).data)


def test_real_tokens_never_attend_to_padding_even_on_the_left():
    classifier = make_classifier("mean", dtype=np.float64)
    mask = np.array([[0, 0, 1, 1, 1]], dtype=bool)
    first = classifier(np.array([[0, 0, 7, 8, 9]]), mask).data
    second = classifier(np.array([[4, 12, 7, 8, 9]]), mask).data   # other pad ids, same real tokens
    np.testing.assert_allclose(first, second, rtol=1e-12)
    blocked = padding_attention_mask(mask)
    assert blocked.shape == (1, 1, 5, 5)
    assert not blocked[0, 0, 0, 0] and blocked[0, 0, 1, 0] and not blocked[0, 0, 4, 2]


def test_bad_masks_and_settings_are_errors():
    hidden = Tensor(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="at least one real token"):
        pool(hidden, np.array([[1, 1, 1], [0, 0, 0]]))
    with pytest.raises(ValueError, match="shape"):
        pool(hidden, np.ones((2, 4)))
    with pytest.raises(ValueError, match="pooling"):
        pool(hidden, None, "max")
    with pytest.raises(ValueError, match="head"):
        make_classifier(head="transformer")


# ----------------------------------------------------------------------------------------------
# Freezing


def _loss(classifier, seed=0):
    rng = np.random.default_rng(seed)
    idx, labels = rng.integers(0, 16, (4, 8)), rng.integers(0, 3, 4)
    return F.cross_entropy(classifier(idx), labels)


@pytest.mark.parametrize("trainable, k, trainable_prefixes", [
    ("head", 1, ("head.",)),
    ("top_k", 1, ("head.", "gpt.blocks.1.", "gpt.final_norm.")),
    ("top_k", 2, ("head.", "gpt.blocks.", "gpt.final_norm.")),
    ("all", 1, ("head.", "gpt.")),
])
def test_frozen_parameters_get_no_gradient(trainable, k, trainable_prefixes):
    classifier = freeze(make_classifier(), trainable, k)
    _loss(classifier).backward()
    for name, p in classifier.named_parameters():
        should_train = name.startswith(trainable_prefixes)
        assert p.requires_grad == should_train, name
        assert (p.grad is not None) == should_train, name


def test_freezing_stores_fewer_gradient_bytes_and_keeps_fewer_activations():
    config = GPTConfig(vocab_size=64, context_length=32, d_model=32, n_layer=3, n_head=2)
    measured = {}
    for trainable in ("head", "top_k", "all"):
        classifier = freeze(make_classifier("mean", config=config), trainable, k=1)
        idx = np.random.default_rng(0).integers(0, 64, (8, 32))

        def step():
            loss = F.cross_entropy(classifier(idx), np.arange(8) % 3)
            saved = saved_activation_bytes(loss)
            loss.backward()
            return saved

        saved, peak = peak_memory(step)
        measured[trainable] = (gradient_bytes(classifier), saved, peak)
        assert gradient_bytes(classifier) == 4 * classifier.num_parameters(trainable_only=True)
    head, top, full = measured["head"], measured["top_k"], measured["all"]
    assert head[0] < top[0] < full[0]
    assert head[1] < top[1] < full[1]
    assert head[1] < 0.01 * full[1], "a frozen body keeps (almost) no activations for backward"
    assert head[2] < 0.5 * full[2], "the peak of a frozen-body step should be far below a full step's"


def test_freeze_rejects_unknown_modes_and_bad_k():
    with pytest.raises(ValueError, match="trainable"):
        freeze(make_classifier(), "body")
    with pytest.raises(ValueError, match="between 1 and the number of blocks"):
        freeze(make_classifier(), "top_k", k=3)


def test_cached_features_give_the_classifier_logits():
    classifier = make_classifier("mean", "mlp")
    idx = np.random.default_rng(0).integers(0, 16, (10, 8))
    features = extract_features(classifier, idx, batch_size=4)
    np.testing.assert_allclose(predict_logits(classifier.head, features), predict_logits(classifier, idx),
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Gradient checks (float64; GELU and softmax are smooth, so there are no kinks to avoid)


@pytest.mark.parametrize("pooling, head", [("last", "linear"), ("mean", "mlp")])
def test_classifier_gradients_match_finite_differences(pooling, head):
    config = GPTConfig(vocab_size=12, context_length=6, d_model=8, n_layer=2, n_head=2)
    classifier = make_classifier(pooling, head, dtype=np.float64, config=config)
    ids, mask = pad_batch([[1, 5, 2, 7, 3], [4, 9, 6], [11, 0, 8, 10, 2]], pad_id=3)
    checked = [classifier.head.out.weight, classifier.head.out.bias, classifier.gpt.final_norm.weight,
               classifier.gpt.blocks[1].mlp.down.weight, classifier.gpt.blocks[0].attn.qkv.weight,
               classifier.gpt.token_embedding.weight]
    if head == "mlp":
        checked.append(classifier.head.up.weight)
    assert gradcheck(lambda *params: classifier(ids, mask), *checked)


# ----------------------------------------------------------------------------------------------
# Training


def _toy_task(n: int, seed: int):
    """Class = which third of the vocabulary most tokens come from: learnable, not by one token."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    idx = np.where(rng.random((n, 8)) < 0.7, labels[:, None] * 5 + rng.integers(0, 5, (n, 8)),
                   rng.integers(0, 15, (n, 8)))
    return idx, labels


def test_a_tiny_fine_tune_reduces_the_loss():
    idx, labels = _toy_task(96, 0)
    val = _toy_task(48, 1)
    classifier = freeze(make_classifier("mean"), "all")
    config = FineTuneConfig(steps=60, batch_size=16, learning_rate=3e-3, warmup_steps=5, eval_interval=10)
    history = train_classifier(classifier, idx, labels, config, np.random.default_rng(0), val=val)
    assert np.mean(history.train_loss[-10:]) < 0.5 * np.mean(history.train_loss[:10])
    assert max(history.val_accuracy) > 0.8
    assert history.eval_steps == [10, 20, 30, 40, 50, 60]
    # the best validation weights are the ones restored
    best = history.eval_steps.index(history.best_step)
    accuracy = np.mean(np.argmax(predict_logits(classifier, val[0]), axis=1) == val[1])
    assert accuracy == pytest.approx(history.val_accuracy[best])
    assert history.optimizer_state_bytes == 2 * 4 * classifier.num_parameters(trainable_only=True)


def test_training_a_head_leaves_the_frozen_body_unchanged():
    idx, labels = _toy_task(32, 0)
    classifier = freeze(make_classifier("mean"), "head")
    before = {name: p.data.copy() for name, p in classifier.gpt.named_parameters()}
    head_before = classifier.head.out.weight.data.copy()
    config = FineTuneConfig(steps=10, batch_size=8, learning_rate=1e-2, warmup_steps=1)
    train_classifier(classifier, idx, labels, config, np.random.default_rng(0))
    for name, p in classifier.gpt.named_parameters():
        assert np.array_equal(p.data, before[name]), name
    assert not np.array_equal(classifier.head.out.weight.data, head_before)


def test_a_head_trains_on_cached_features():
    idx, labels = _toy_task(96, 0)
    classifier = make_classifier("mean")
    features = extract_features(classifier, idx)
    head = ClassifierHead(16, 3, rng=np.random.default_rng(0))
    config = FineTuneConfig(steps=80, batch_size=32, learning_rate=3e-2, warmup_steps=5)
    history = train_classifier(head, features, labels, config, np.random.default_rng(0))
    assert np.mean(history.train_loss[-10:]) < np.mean(history.train_loss[:10])


def test_training_with_everything_frozen_is_an_error():
    classifier = make_classifier()
    classifier.requires_grad_(False)
    with pytest.raises(ValueError, match="frozen"):
        train_classifier(classifier, *_toy_task(8, 0), FineTuneConfig(steps=1), np.random.default_rng(0))
