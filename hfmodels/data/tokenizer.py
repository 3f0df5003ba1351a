"""Byte-level BPE tokenizers trained with the `tokenizers` library, saved as a `PreTrainedTokenizerFast`
(`tokenizer.json` + `tokenizer_config.json`), so `AutoTokenizer` loads them without hfmodels."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

END_OF_TEXT = "<|endoftext|>"  # ends every document; also the beginning-of-text token, like GPT-2's
PAD = "<|pad|>"
SPECIAL_TOKENS = (END_OF_TEXT, PAD)
BYTE_ALPHABET = pre_tokenizers.ByteLevel.alphabet()  # 256 symbols, one per byte: any text can be encoded
MIN_VOCAB_SIZE = len(BYTE_ALPHABET) + len(SPECIAL_TOKENS)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, model_max_length: int | None = None
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with `vocab_size` tokens (bytes, merges and the two special tokens)."""
    if not isinstance(vocab_size, int) or vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(
            f"vocab_size={vocab_size!r} is too small: a byte-level BPE tokenizer needs at least {MIN_VOCAB_SIZE} "
            f"tokens ({len(BYTE_ALPHABET)} bytes and {len(SPECIAL_TOKENS)} special tokens)"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), initial_alphabet=BYTE_ALPHABET, show_progress=False
    )
    tokenizer.train_from_iterator(checked_texts(texts), trainer)
    options = {"model_max_length": model_max_length} if model_max_length else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, pad_token=PAD, **options
    )


def checked_texts(texts: Iterable[str]) -> Iterable[str]:
    count = 0
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(f"tokenizer training texts must be strings, got {type(text).__name__} at row {count}")
        count += 1
        yield text
    if count == 0:
        raise ValueError("cannot train a tokenizer on no texts")
