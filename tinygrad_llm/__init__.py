"""tinygrad_llm: a NumPy-only autograd engine and the language models built on it.

The package grows in the order the lessons introduce it; the names below are re-exported in that
order, so this file doubles as the table of contents.
"""

# --- lesson 01: the autograd engine ---------------------------------------------------------
from .core.tensor import Tensor, no_grad, enable_grad, is_grad_enabled, where, maximum, concatenate, stack, split
from .core import functional
from .core.gradcheck import gradcheck, GradcheckError

# --- lessons 02-03: tokenization and data ---------------------------------------------------
from .text.simple import CharTokenizer, WordTokenizer
from .text.patterns import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN
from .text.bpe import BPETokenizer, BatchEncoding

from .text.corpus import Document, Section, load_documents, corpus_text
from .text.data import (prepare_corpus, PreparedCorpus, train_val_split,
                   SlidingWindowDataset, DataLoader, random_batch)

# the course recipe (the tokenizer of lesson 02, the corpus of lesson 03, the model of lesson 07)
from .course.recipe import course_tokenizer, course_corpus, course_model

# --- lessons 04-07: modules, the GPT, training ----------------------------------------------
from .model.nn import Module, ModuleList, Parameter, Linear, Embedding, LayerNorm, Dropout, GELU
from .model.gpt import GPTConfig, GPT, MultiHeadAttention, MLP, TransformerBlock, sinusoidal_positions
from .train.optim import SGD, Adam, AdamW, clip_grad_norm_, cosine_schedule, weight_decay_groups
from .model.state import save_safetensors, load_safetensors, CheckpointError
from .train.batches import RandomWindows, ShuffledRows, Mix
from .train.trainer import TrainConfig, Trainer, TrainHistory, TrainHook
from .evaluate.perplexity import perplexity
from .model.generation import generate

# --- lessons 08-09: decoding, evaluation, GPT-2 interop ------------------------------------
from .model.gpt import KVCache
from .model.generation import (beam_search, Beam, next_token_distribution, apply_repetition_penalty,
                         sample_from)
from .evaluate.metrics import (rouge_tokenize, rouge_n, rouge_l, rouge, mean_rouge, RougeScore,
                      bleu_tokenize, corpus_bleu, sentence_bleu, BleuScore,
                      accuracy, confusion_matrix, precision_recall_f1, macro_f1)
from .model.gpt2 import load_gpt2, export_gpt2

# --- lessons 10-12: fine-tuning --------------------------------------------------------------
from .finetune.topic_task import topic_classification_task, ClassificationTask, ClassificationSplit
from .finetune.baselines import bag_of_words, majority_class, best_keyword_rule, SoftmaxRegression
from .finetune.classifier import (GPTClassifier, ClassifierHead, freeze, extract_features, train_classifier,
                             FineTuneConfig, FineTuneHistory)
from .scale.memory import gradient_bytes, optimizer_state_bytes
from .finetune.instruction_data import (PromptTemplate, InstructionExample, InstructionData,
                                        build_instruction_data, encode_example, PromptTooLongError,
                                        response_loss)
from .finetune.instruction_tuning import (InstructConfig, InstructionTrainer, InstructHistory,
                                          generate_responses, evaluate_responses)
from .evaluate.answers import exact_match
from .finetune.lora import (LoRALinear, apply_lora, add_adapter, set_active_adapter, merge_lora, unmerge_lora,
                   unload_lora, save_lora, load_lora)
from .finetune.adapters import PromptTunedGPT, BottleneckAdapter, apply_bottleneck_adapters
from .scale.memory import trainable_parameter_count, finetune_cost

# --- lessons 13-15: compression --------------------------------------------------------------
# (the functions quantize / dequantize stay in the quantize module: a top-level name
# ``quantize`` would hide the module of the same name)
from .compress.quantize import (QuantScheme, QuantizedTensor, QuantizedLinear, QuantizedEmbedding, quantize_model,
                       weight_bytes)
from .compress.calibration import calibrate
from .compress.quantized_state import save_quantized, load_quantized
from .compress.qat import fake_quantize, prepare_qat, convert_qat
from .compress.qlora import apply_qlora
from .scale.memory import finetune_memory
from .compress.lowprec import round_to_bfloat16, round_to_float16
from .sparsity.pruning import (PruningMask, magnitude_prune, MaskedOptimizer, finetune_pruned,
                               iterative_prune, sparsity_schedule)
from .sparsity.structured import prune_structured
from .sparsity.sparse import storage_bytes, save_sparse, load_sparse
from .compress.distill import kl_div_with_temperature, distillation_loss, Distiller

# --- lessons 20-22: model families ------------------------------------------------------------
from .model.rnn import RNNConfig, RNNLanguageModel
from .train.bptt import ConsecutiveWindows, TruncatedBPTT
from .model.encoder import Encoder
from .text.masking import add_special_tokens, mask_tokens
from .train.mlm import MaskedWindows, masked_lm_loss
from .model.seq2seq import CrossAttention, EncoderDecoder
from .text.spans import span_corrupt, restore_spans
from .train.spans import SpanCorruptedWindows, seq2seq_loss
