"""Prepare a corpus for training: tokenizer, train/validation token arrays, statistics.

    python data/prepare.py                               # the embedded corpus, course tokenizer
    python data/prepare.py --input data/tiny_corpus.txt --vocab-size 512
    python data/prepare.py --input my_texts/ --out prepared/ --val-fraction 0.05

A thin wrapper over ``tinygrad_llm.prepare_corpus`` with the course's defaults: the arrays are written as ``.npy`` files into a
sub-folder of the output folder named after the corpus and a hash of its settings, and a second
run with the same settings loads them instead of recomputing (``--force`` recomputes).
"""

from __future__ import annotations

import argparse
import sys
import time

from tinygrad_llm.course import prepare_with_defaults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", metavar="PATH",
                        help="a UTF-8 text file (documents separated by <|endoftext|>) or a folder of "
                             ".txt files; default: the embedded Python documentation corpus")
    parser.add_argument("--vocab-size", type=int, default=None,
                        help="BPE vocabulary size (default 2048, the course tokenizer)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: outputs/data)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="fraction of tokens, at the end, held out for validation (default 0.1)")
    parser.add_argument("--force", action="store_true", help="recompute even if a cached result exists")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        prepared = prepare_with_defaults(args.input, vocab_size=args.vocab_size, val_fraction=args.val_fraction,
                                  out_dir=args.out, force=args.force)
    except (OSError, ValueError) as error:   # missing files, bad UTF-8, bad settings: one line, no traceback
        print(f"prepare: error: {error}", file=sys.stderr)
        return 1
    stats = prepared.stats
    print(f"corpus            {args.input or 'embedded (pydoc_data.topics)'}")
    print(f"documents         {stats['documents']:,}")
    print(f"characters        {stats['characters']:,}")
    print(f"bytes (UTF-8)     {stats['bytes']:,}")
    print(f"tokens            {stats['tokens']:,}  (train {stats['train_tokens']:,}, "
          f"validation {stats['val_tokens']:,}, stored as {stats['dtype']})")
    print(f"vocabulary        {stats['vocab_size']:,}  ({stats['vocab_coverage']:.1%} of it occurs)")
    print(f"compression       {stats['bytes_per_token']:.2f} bytes per token")
    print(f"written to        {prepared.folder}")
    print(f"{'loaded from cache' if prepared.cached else 'computed'} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
