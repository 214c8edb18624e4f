"""The course map (lesson 01 onwards): each lesson's number, file, title, part and new modules.

This is the one place that says which lesson introduces which module. ``lessons/run_all.py``
runs the lessons in this order, the README's lesson table repeats these titles, and the tests
check that both agree with it and that each module's docstring names the lesson listed here.
``NEIGHBOURS`` pairs a module with the one it builds on, whose name its docstring mentions when
it says what it adds.

    >>> lesson_of("text.bpe").file
    '02_tokenization.py'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    """One lesson: ``modules`` are the package modules it introduces, relative to the package
    (``"text.bpe"`` is ``tinygrad_llm.text.bpe``)."""

    number: int
    file: str
    title: str
    part: str
    modules: tuple[str, ...] = ()


# The book's parts, in course order (lesson numbers grow from part to part); a part may have no
# lesson yet.
PARTS: tuple[str, ...] = ("Foundations", "Pretraining", "Decoding and evaluation", "Fine-tuning",
                          "Compression and deployment", "Scale", "Model families", "Benchmarks and adaptation",
                          "Alignment")

COURSE: tuple[Lesson, ...] = (
    Lesson(1, "01_autograd.py",
           "derivatives by hand, the chain rule, the Tensor and its graph, gradient checking, a tiny MLP",
           "Foundations", ("core.tensor", "core.functional", "core.gradcheck", "core.checks", "core.parallel",
                          "course.settings", "course.map", "course.notebooks", "course.book",
                          "course.figures", "course.exercises")),
    Lesson(2, "02_tokenization.py",
           "words, unknown words, bytes, byte-level BPE trained by hand on the real corpus",
           "Foundations", ("text.simple", "text.patterns", "text.bpe", "text.formats", "text.corpus", "course.recipe")),
    Lesson(3, "03_data_loading.py", "the token array, next-token targets, sliding windows and batches",
           "Foundations", ("text.data",)),
    Lesson(4, "04_embeddings.py",
           "embedding tables, learned and sinusoidal positions, word vectors trained and projected to 2-D",
           "Foundations", ("model.nn",)),
    Lesson(5, "05_attention.py",
           "self-attention step by step: weights, scaling, the causal mask, dropout, multiple heads",
           "Foundations", ("core.attention", "model.gpt")),
    Lesson(6, "06_gpt_model.py",
           "layer norm, GELU, residuals, the transformer block, the GPT; parameters and memory of GPT-2",
           "Foundations", ("scale.memory",)),
    Lesson(7, "07_pretraining.py",
           "pretraining on the corpus with AdamW; loss curves, perplexity against a bigram baseline, a checkpoint",
           "Pretraining", ("train.optim", "train.batches", "train.trainer", "core.files", "model.state", "evaluate.perplexity",
                           "model.generation", "model.gpt2", "cli.main", "__main__")),
    Lesson(8, "08_decoding.py",
           "greedy, temperature, top-k, top-p, beam search; the KV cache and its speed-up, measured",
           "Decoding and evaluation"),
    Lesson(9, "09_evaluation.py",
           "perplexity with a sliding window, ROUGE and BLEU by hand and by the library, what each misses",
           "Decoding and evaluation", ("evaluate.metrics",)),
    Lesson(10, "10_classification_finetuning.py",
           "a topic classifier: baselines, new heads on a frozen GPT, top blocks, full fine-tuning, their memory",
           "Fine-tuning", ("finetune.topic_task", "finetune.baselines", "finetune.classifier")),
    Lesson(11, "11_instruction_finetuning.py",
           "instruction tuning with a response-only loss; forgetting, and how replay and LoRA reduce it",
           "Fine-tuning", ("finetune.instruction_data", "finetune.instruction_tuning", "evaluate.answers")),
    Lesson(12, "12_lora_and_peft.py",
           "LoRA, prompt tuning and bottleneck adapters against full fine-tuning; merging, saving, switching adapters",
           "Fine-tuning", ("finetune.lora", "finetune.adapters")),
    Lesson(13, "13_quantization.py",
           "int8 and int4 weights (per tensor, channel, group; zero points), W8A8, outliers, bf16/fp16, QAT, QLoRA",
           "Compression and deployment", ("compress.quantize", "compress.calibration", "compress.quantized_state", "compress.qat",
                           "compress.lowprec", "compress.qlora")),
    Lesson(14, "14_pruning.py",
           "magnitude pruning, layer-wise and global, masks held through training, heads and neurons, sparse storage",
           "Compression and deployment", ("sparsity.pruning", "sparsity.structured", "sparsity.sparse")),
    Lesson(15, "15_distillation.py",
           "a small student taught by the lesson-07 model: soft targets at a temperature, against labels alone",
           "Compression and deployment", ("compress.distill",)),
    Lesson(16, "16_deployment_quantization.py",
           "GPTQ and AWQ against rounding at 4 and 3 bits; the model exported to GGUF, read back and run by llama.cpp",
           "Compression and deployment", ("compress.gptq", "compress.awq", "model.gguf", "compress.export")),
    Lesson(17, "17_scale_arithmetic.py",
           "parameters, memory (Adam, activations, recomputation, ZeRO stages) and FLOPs, checked against GPT-2, GPT-3, Chinchilla",
           "Scale", ("scale.compute", "scale.sharding", "model.recompute")),
    Lesson(18, "18_scaling_laws.py",
           "a sweep of model sizes and token budgets on our engine; L(N) and L(N, D) fitted, bootstrapped, held-out prediction",
           "Scale", ("scale.laws",)),
    Lesson(19, "19_data_parallel.py",
           "data parallelism and ZeRO stages 1-2 on MPI: two ranks train the single-process model; bytes held and sent, measured",
           "Scale", ("distributed.comm", "distributed.ddp", "distributed.zero", "distributed.worker")),
    Lesson(20, "20_recurrent_baseline.py",
           "a GRU language model with truncated BPTT against a GPT of its size: loss by position, time per step",
           "Model families", ("model.rnn", "train.bptt")),
    Lesson(21, "21_encoder_mlm.py",
           "a BERT-style encoder: bidirectional attention, masked language modelling, fill-mask against the decoder",
           "Model families", ("model.encoder", "text.masking", "train.mlm")),
    Lesson(22, "22_encoder_decoder.py",
           "an encoder-decoder with cross-attention, pretrained by T5's span corruption; decoding with the source cached",
           "Model families", ("text.spans", "model.seq2seq", "train.spans")),
    Lesson(23, "23_benchmarks_and_icl.py",
           "benchmarks scored by log-likelihood, error bars, contamination; zero- and few-shot in-context learning",
           "Benchmarks and adaptation", ("evaluate.harness", "evaluate.benchmarks", "evaluate.lm_eval_adapter")),
    Lesson(24, "24_domain_adaptation.py",
           "continued pretraining on standard-library code against training from scratch; forgetting and replay",
           "Benchmarks and adaptation"),
    Lesson(25, "25_reward_model.py",
           "an alignment criterion and published judges, simulated labellers, a reward model trained on rankings",
           "Alignment", ("align.preferences", "align.sequences", "align.sampling", "align.reward_model",
                         "course.alignment")),
    Lesson(26, "26_direct_preference.py",
           "DPO and IPO on the same pairs against a frozen reference: held-out preferences, the judge, KL",
           "Alignment", ("align.dpo",)),
)

# Modules built ahead of the lesson that will introduce them: module -> the words of its header
# that say which lessons it belongs to. A new lesson moves its modules from here into COURSE.
UPCOMING: dict[str, str] = {
    "align.ppo": "the alignment lessons",
    "align.rlhf": "the alignment lessons",
}

# module -> the module it builds on (its docstring says what it adds over it)
NEIGHBOURS: dict[str, str] = {
    "core.attention": "core.functional",
    "text.bpe": "text.simple",
    "text.formats": "text.bpe",
    "text.patterns": "text.bpe",
    "model.gpt2": "model.gpt",
    "finetune.adapters": "finetune.lora",
    "compress.qlora": "finetune.lora",
    "compress.qat": "compress.quantize",
    "compress.quantized_state": "model.state",
    "sparsity.structured": "sparsity.pruning",
    "sparsity.sparse": "sparsity.pruning",
    "compress.distill": "train.trainer",
    "scale.laws": "scale.compute",
    "distributed.zero": "distributed.ddp",
    "distributed.worker": "distributed.ddp",
    "train.bptt": "train.batches",
    "train.mlm": "train.batches",
    "model.encoder": "model.gpt",
    "text.masking": "text.data",
    "text.spans": "text.masking",
    "model.seq2seq": "model.encoder",
    "train.spans": "train.mlm",
    "evaluate.answers": "evaluate.metrics",
    "compress.gptq": "compress.quantize",
    "compress.awq": "compress.gptq",
    "model.gguf": "model.state",
    "compress.export": "model.gguf",
    "evaluate.harness": "evaluate.perplexity",
    "evaluate.benchmarks": "evaluate.harness",
    "evaluate.lm_eval_adapter": "evaluate.harness",
}


def lesson(number: int) -> Lesson:
    """The lesson with this number."""
    for entry in COURSE:
        if entry.number == number:
            return entry
    raise KeyError(f"no lesson {number}; the course has lessons {COURSE[0].number}..{COURSE[-1].number}")


def lesson_of(module: str) -> Lesson:
    """The lesson that introduces ``module`` (``"text.bpe"``, package prefix optional)."""
    name = module.removeprefix("tinygrad_llm.")
    for entry in COURSE:
        if name in entry.modules:
            return entry
    raise KeyError(f"no lesson introduces {module!r}; add it to tinygrad_llm/course/map.py")
