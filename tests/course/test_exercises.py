"""The exercises' checkers (tinygrad_llm.course.exercises, every lesson's closing section).

Every checker must pass on its reference solution, refuse the untouched stub with "not answered
yet", and refuse a plausible wrong answer with a hint that does not give the answer away. The
learner's own answers run only with ``python -m pytest -m exercises`` (see conftest.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tinygrad_llm.course.exercises import EXERCISE_DIR, REGISTRY, ExerciseFailed, check_exercise, load_answer
from tinygrad_llm.cli.main import main
from tinygrad_llm.course.map import COURSE

SOLUTIONS = EXERCISE_DIR / "solutions"
IDS = list(REGISTRY)

# One plausible mistake per exercise, as an edit (old -> new) of the reference solution.
WRONG = {
    "01.1": ("(2 * eps)", "eps"),                                        # forgot the 2 of central differences
    "01.2": ("13.0", "12.0"),                                            # 3 x^2, forgetting the + x
    "02.1": ("zip(ids, ids[1:])", "zip(ids[::2], ids[1::2])"),           # non-overlapping pairs only
    "02.2": ("i += 2", "i += 1"),                                        # overlapping merges
    "03.1": ("tokens[s + 1:s + context_length + 1]", "tokens[s:s + context_length]"),  # targets not shifted
    "03.2": ("20", "21"),                                                # counted the last, incomplete window
    "04.1": ("np.add.at(grad, ids.reshape(-1), grad_out.reshape(-1, grad_out.shape[-1]))",
             "grad[ids.reshape(-1)] = grad_out.reshape(-1, grad_out.shape[-1])"),  # repeated ids overwrite
    "04.2": ("unit @ unit.T", "e @ e.T"),                                # dot products, not cosines
    "05.1": ("/ np.sqrt(d)", ""),                                        # no 1/sqrt(d) scaling
    "05.2": ("2_097_152", "524_288"),                                    # counted floats, not bytes
    "06.1": ("29_184", "32_384"),                                        # an untied output head
    "06.2": ("np.sqrt(var + eps)", "np.sqrt(var) + eps"),
    "07.1": ("m / (1 - beta1 ** t)", "m"),                               # no bias correction
    "07.2": ("(step + 1) / warmup_steps", "step / warmup_steps"),        # step 0 gets rate 0
    "07.3": ("= 10", "= 5"),                                           # half the peak at step 4 needs 10
    "08.1": ("scaled = logits / temperature", "scaled = logits * temperature"),
    "08.2": ("above < p", "np.cumsum(probs[row][order]) < p"),           # drops the token that crosses p
    "08.3": ("TEMPERATURE = ", "TEMPERATURE = 2 * "),                   # twice the right temperature
    "09.1": ("np.exp(np.mean(nll))", "np.mean(np.exp(nll))"),            # mean of exps
    "09.2": ("6", "7"),
    "10.1": ("(true, predicted)", "(predicted, true)"),                  # transposed
    "10.2": ("float(np.mean(scores))", "float(np.mean(scores[:-1] or [0.0]))"),
    "11.1": ("prompt_length - 1", "prompt_length"),                      # off by one
    "11.2": ("7", "8"),
    "12.1": ("4096", "49152"),                                           # r * in * out
    "12.2": ("(alpha / r)", "alpha"),
    "13.1": ("/ 127", "/ 128"),
    "13.2": ("132_096", "131_072"),                                      # forgot the scales
    "13.3": ("= 32", "= 64"),                                           # 4.5 bits per weight
    "14.1": ("keep[order[:k]] = False", "keep[order[::-1][:k]] = False"),   # pruned the largest
    "14.2": ("288", "672"),                                              # the pruned count, not the kept
    "15.1": ("temperature ** 2 *", ""),                                  # no T^2
    "15.2": ("0.75", "0.9"),                                             # forgot the temperature
    "16.1": ("(W[:, i] - q) / H_inverse[i, i]", "(W[:, i] - q)"),         # forgot to divide by [H^-1]_ii
    "16.2": ("norm_weight / s", "norm_weight * s"),                      # scaled the norm the wrong way
    "16.3": ("139264", "131072"),                                        # forgot the float16 scales
    "17.1": ("12 * n_parameters", "8 * n_parameters"),                   # forgot the fp32 master weights
    "17.2": ("1.389", "0.463"),                                          # 2 N D: the forward pass only
    "17.3": ("= 8", "= 7"),                                              # rounded down
    "18.1": ("float(-slope)", "float(slope)"),                           # the sign of the exponent
    "18.2": ("0.7046", "0.8394"),                                        # ten times, not a hundred
    "19.1": ("(rank + 1) * per_rank", "(rank + 1) * per_rank + 1"),     # overlapping shards
    "19.2": ("6_000_000", "8_000_000"),                                  # forgot the (R - 1) / R
    "20.1": ("(1 - z) * n + z * h", "z * n + (1 - z) * h"),              # the update gate the wrong way round
    "20.2": ("46_656", "46_368"),                                        # one bias vector per gate
    "21.1": ("np.where(pad[None, :], -np.inf, scores)", "scores"),       # forgot the padding mask
    "21.2": ("238.08", "245.76"),                                        # counted [CLS] and [SEP] as maskable
    "22.1": ("text.extend(spans[token] if token in marks else [token])", "text.append(token)"),  # left the sentinels
    "22.2": ("26", "25"),                                                # forgot the closing sentinel
    "23.1": ('"\\n\\n"', '"\\n"'),                                       # one line break between demonstrations
    "23.2": ("/ len(choices[i])", ""),                                   # acc_norm not normalised
    "23.3": ("0.025", "0.000625"),                                       # the variance, not its square root
    "24.1": ("share = k / batch_size", "share = fraction"),             # the fraction, not the rows it rounds to
    "24.2": ("= 3", "= 17"),                                             # the domain rows, not the replayed ones
    "25.1": ("np.logaddexp(0.0, -margin)", "np.log(1 + np.exp(-margin))"),    # overflows at large margins
    "25.2": ("120", "60"),                                               # unordered pairs counted once per two
    "26.1": ("-beta * margin", "beta * margin"),                         # the sign of the margin
    "26.2": ("0.6931", "0.0"),                                           # a loss, not a margin
}


def _answer_folder(tmp_path: Path, id: str, source: str) -> Path:
    (tmp_path / REGISTRY[id].filename).write_text(source)
    return tmp_path


def test_every_exercise_has_a_stub_a_solution_and_a_wrong_answer():
    for id, entry in REGISTRY.items():
        assert (EXERCISE_DIR / entry.filename).is_file(), id
        assert (SOLUTIONS / entry.filename).is_file(), id
    assert set(WRONG) == set(REGISTRY)
    lessons = {entry.lesson for entry in REGISTRY.values()}
    assert lessons == {entry.number for entry in COURSE}, "every lesson has exercises"


@pytest.mark.parametrize("id", IDS)
def test_checker_passes_on_the_reference_solution(id: str):
    assert check_exercise(id, SOLUTIONS)


@pytest.mark.parametrize("id", IDS)
def test_checker_says_the_untouched_stub_is_not_answered(id: str, tmp_path: Path):
    shutil.copy(EXERCISE_DIR / REGISTRY[id].filename, tmp_path)
    with pytest.raises(ExerciseFailed, match="not answered yet"):
        check_exercise(id, tmp_path)


@pytest.mark.parametrize("id", IDS)
def test_checker_refuses_a_plausible_wrong_answer_with_a_hint(id: str, tmp_path: Path):
    source = (SOLUTIONS / REGISTRY[id].filename).read_text()
    old, new = WRONG[id]
    assert old in source, f"the wrong answer of {id} no longer edits its solution"
    folder = _answer_folder(tmp_path, id, source.replace(old, new))
    with pytest.raises(ExerciseFailed) as failure:
        check_exercise(id, folder)
    message = str(failure.value)
    assert "Hint:" in message or "should" in message
    answer = getattr(load_answer(SOLUTIONS / REGISTRY[id].filename), "ANSWER", None)
    if answer is not None:   # a prediction's checker says too large / too small and its fixed hint, no number
        assert message.startswith("your prediction of ") and message.endswith(REGISTRY[id].hint)
        assert " is too large. " in message or " is too small. " in message


def test_a_file_that_does_not_run_is_reported(tmp_path: Path):
    folder = _answer_folder(tmp_path, "09.1", "def perplexity_from_nll(nll):\n    return (\n")
    with pytest.raises(ExerciseFailed, match="does not run"):
        check_exercise("09.1", folder)


def test_unknown_exercise_is_a_key_error():
    with pytest.raises(KeyError, match="no exercise '99.9'"):
        check_exercise("99.9")


def test_cli_checks_an_answer_and_lists_the_exercises(tmp_path: Path, capsys):
    assert main(["exercise", "check", "12.1", "--dir", str(SOLUTIONS)]) == 0
    assert "correct" in capsys.readouterr().out
    shutil.copy(EXERCISE_DIR / "12_1.py", tmp_path)
    assert main(["exercise", "check", "12.1", "--dir", str(tmp_path)]) == 1
    assert "not answered yet" in capsys.readouterr().err
    assert main(["exercise", "list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(REGISTRY)
    assert main(["exercise", "check", "99.9"]) == 1
    assert "no exercise" in capsys.readouterr().err


@pytest.mark.exercises
@pytest.mark.parametrize("id", IDS)
def test_my_answer(id: str):
    """Your answers in exercises/ (run with ``python -m pytest -m exercises``)."""
    try:
        print(check_exercise(id))
    except ExerciseFailed as failure:
        pytest.fail(f"exercise {id}: {failure}", pytrace=False)
