"""The run's tokenizer: trained on its training texts with `tokenizers`, saved as JSON.

The JSON carries normalisation, splitting, the vocabulary, truncation and padding, so the runtime
(`toolkit_deploy.decoders.text`) rebuilds exactly this tokenizer from the model file.
"""

from __future__ import annotations

from collections.abc import Iterable

from toolkit.recipe import TextData

PAD, UNK = "[PAD]", "[UNK]"
SPECIAL = [PAD, UNK]  # trainers give special tokens the first ids, in this order
PAD_ID, UNK_ID = 0, 1


def train_tokenizer(texts: Iterable[str], data: TextData) -> str:
    """Train the tokenizer `data` describes on `texts`; returns its JSON document.

    Deterministic: the same texts (in the same order) and settings give the same JSON.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    common = {"vocab_size": data.vocab_size, "special_tokens": SPECIAL, "show_progress": False}
    if data.tokenizer == "bpe":
        model = models.BPE(unk_token=UNK)
        trainer = trainers.BpeTrainer(min_frequency=data.min_frequency, **common)
    elif data.tokenizer == "unigram":
        model = models.Unigram()
        trainer = trainers.UnigramTrainer(unk_token=UNK, **common)
    elif data.tokenizer == "wordpiece":
        model = models.WordPiece(unk_token=UNK)
        trainer = trainers.WordPieceTrainer(min_frequency=data.min_frequency, **common)
    else:  # word, char: whole words or single characters
        model = models.WordLevel(unk_token=UNK)
        trainer = trainers.WordLevelTrainer(min_frequency=data.min_frequency, **common)
    tokenizer = Tokenizer(model)
    steps = {"nfkc": [normalizers.NFKC()], "nfc": [normalizers.NFC()], "none": []}
    # BertNormalizer: drops control characters, maps every whitespace to a space and, with
    # handle_chinese_chars, puts spaces around CJK ideographs so each becomes its own word.
    char = data.tokenizer == "char"
    tokenizer.normalizer = normalizers.Sequence([
        *steps[data.normalization],
        # Characters are pieces already: spaces around CJK ideographs would only break them up.
        normalizers.BertNormalizer(clean_text=True,
                                   handle_chinese_chars=data.split_cjk and not char,
                                   strip_accents=False, lowercase=data.lowercase),
        # Runs of spaces (indentation, aligned columns) as one: they would fill max_length.
        *([normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip()] if char else []),
    ])
    # Words and punctuation marks are separate pieces; the subword model splits words further.
    # `char`: every character (spaces included, so n-grams see word boundaries) is a piece.
    tokenizer.pre_tokenizer = (pre_tokenizers.Split(Regex("."), behavior="isolated") if char
                               else pre_tokenizers.BertPreTokenizer())
    tokenizer.train_from_iterator(texts, trainer)
    if (tokenizer.token_to_id(PAD), tokenizer.token_to_id(UNK)) != (PAD_ID, UNK_ID):
        raise RuntimeError(f"tokenizers gave {SPECIAL} unexpected ids; augmentation relies on "
                           f"{PAD_ID} and {UNK_ID}.")
    tokenizer.enable_truncation(data.max_length)
    tokenizer.enable_padding(length=data.max_length, pad_id=PAD_ID, pad_token=PAD)
    return tokenizer.to_str()
