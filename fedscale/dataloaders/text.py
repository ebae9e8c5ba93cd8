"""FedScale's text data sets, Reddit (``reddit``, alias ``blog``) and StackOverflow
(``stackoverflow``), as token sequences for next-word prediction.

FedScale (SymbioticLab/FedScale: fedscale/dataloaders/nlp.py, benchmark/dataset/download.sh)
unpacks each of them as ``<data_dir>/train/`` and ``<data_dir>/test/``, one text file per client
(its id in the file name), and tokenises them with Hugging Face's ALBERT tokenizer, cutting each
client's text into blocks; its ``client_data_mapping/train.csv`` then numbers those blocks, so it
only holds with that tokenizer. We ship no tokenizer, so ours reads::

    <data_dir>/vocab.txt                        the vocabulary, one token per line
    <data_dir>/client_data_mapping/train.csv    client_id,sample_path,label_name,label_id
    <data_dir>/client_data_mapping/test.csv     the same columns (label columns unused: -1)
    <data_dir>/train/<sample_path>              UTF-8 text, one post per line
    <data_dir>/test/<sample_path>

that is, the mapping lists text files rather than blocks; for FedScale's download, one row per
file of train/ (and test/) naming the file and its client. Words are split on whitespace and
matched exactly against the vocabulary; others become <unk>. Each post, prefixed by <bos>, is cut
into sequences of SEQUENCE_LENGTH + 1 tokens overlapping by one (so every next word is predicted
once), the last one padded; inputs are a sequence's tokens but its last, targets all but its
first. A client is all rows sharing a client_id, numbered by first appearance, as in
``client_mapping``; its samples are the sequences of its files.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import torch

from fedscale.dataloaders.client_mapping import MAPPING_DIR, SPLITS, write_mappings
from fedscale.dataloaders.dataset import PAD_ID, DataError, TokenDataset
from fedscale.dataloaders.partition import CsvTable, group_by_first_appearance, group_by_owner, read_csv_table

VOCABULARY_FILE = "vocab.txt"
SEQUENCE_LENGTH = 20
UNK_ID, BOS_ID = 1, 2
RESERVED_TOKENS = ("<pad>", "<unk>", "<bos>")   # ids PAD_ID, UNK_ID, BOS_ID; the vocabulary file's follow
_COLUMNS = ("client_id", "sample_path")


@dataclass(frozen=True)
class Vocabulary:
    """The vocabulary file's tokens, sorted for lookup, and their ids (after the reserved ones)."""

    sorted_tokens: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids) + len(RESERVED_TOKENS)

    def encode(self, words: np.ndarray) -> np.ndarray:
        """The ids of ``words`` (an array of strings), UNK_ID for words not in the vocabulary."""
        found = np.minimum(np.searchsorted(self.sorted_tokens, words), len(self.ids) - 1)
        return np.where(self.sorted_tokens[found] == words, self.ids[found], UNK_ID)


def read_vocabulary(path: str | PathLike[str]) -> Vocabulary:
    """The tokens of ``path``, one per line, numbered from len(RESERVED_TOKENS) in file order; a
    one-line DataError at the first blank, multi-word, reserved or repeated line."""
    tokens = np.array(_read_text(Path(path), "a UTF-8 vocabulary file, one token per line").splitlines())
    if not len(tokens):
        raise DataError.at(path, "a UTF-8 vocabulary file, one token per line; it is empty")
    seen = np.concatenate([np.array(RESERVED_TOKENS), tokens])
    _, first = np.unique(seen, return_index=True)
    repeated = np.setdiff1d(np.arange(len(RESERVED_TOKENS), len(seen)), first)
    malformed = np.flatnonzero(np.array([len(token.split()) != 1 or token != token.strip() for token in tokens]))
    bad = np.concatenate([malformed, repeated - len(RESERVED_TOKENS)])
    if bad.size:
        line = int(bad.min())
        raise DataError.at(path, f"one token per line, not blank, repeated or one of {' '.join(RESERVED_TOKENS)}; "
                                 f"got {str(tokens[line])!r}", line + 1)
    order = np.argsort(tokens)
    return Vocabulary(tokens[order], order + len(RESERVED_TOKENS))


def load_text(data_dir: str | PathLike[str], data_map_file: str, name: str
              ) -> tuple[TokenDataset, TokenDataset, list[np.ndarray]]:
    """Load the text data set ``name`` in data_dir as (train, test, natural partition).

    Training rows come from ``data_map_file`` if given, else from
    ``client_data_mapping/train.csv``; test rows from ``client_data_mapping/test.csv``. The
    partition has one array of training sequences per client_id, in order of first appearance.
    Any problem raises a one-line DataError naming the file (and the mapping line listing it).
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError.at(root, f"a {name} folder holding {VOCABULARY_FILE}, {MAPPING_DIR}/ and train/ and test/")
    vocabulary = read_vocabulary(root / VOCABULARY_FILE)
    tables = (read_csv_table(data_map_file or root / MAPPING_DIR / "train.csv", _COLUMNS),
              read_csv_table(root / MAPPING_DIR / "test.csv", _COLUMNS))
    (train, per_row), (test, _) = (_split_sequences(root / split, table, vocabulary)
                                   for split, table in zip(SPLITS, tables))
    if not len(test):
        raise DataError.at(tables[1].path, "rows listing at least one non-empty text file")
    rows_of_client = group_by_first_appearance(tables[0].columns["client_id"])
    owner_of_row = np.empty(len(per_row), dtype=np.int64)
    for client, rows in enumerate(rows_of_client):
        owner_of_row[rows] = client
    partition = group_by_owner(np.repeat(owner_of_row, per_row), len(rows_of_client))
    return _dataset(train, len(vocabulary)), _dataset(test, len(vocabulary)), partition


def _split_sequences(folder: Path, table: CsvTable, vocabulary: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """The sequences of every file ``table`` lists, in row order, and how many each row gave."""
    paths = table.columns["sample_path"]
    sequences = []
    for row, relative in enumerate(paths):
        try:
            sequences.append(text_sequences(_read_text(folder / str(relative), "a UTF-8 text file"), vocabulary))
        except DataError as error:
            raise DataError(f"{error} (listed at {table.path}:{table.lines[row]})") from None
    return np.concatenate(sequences), np.array([len(block) for block in sequences], dtype=np.int64)


def _read_text(path: Path, expected: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise DataError.at(path, expected) from None


def text_sequences(text: str, vocabulary: Vocabulary, length: int = SEQUENCE_LENGTH) -> np.ndarray:
    """The (S, length + 1) int64 sequences of ``text``: each non-blank line, its words encoded and
    prefixed by BOS_ID, cut every ``length`` tokens into windows of ``length + 1`` (consecutive
    windows share a token), PAD_ID after a line's end."""
    lines = [line.split() for line in text.splitlines()]
    lines = [words for words in lines if words]
    if not lines:
        return np.empty((0, length + 1), dtype=np.int64)
    line_lengths = np.array([len(words) + 1 for words in lines], dtype=np.int64)
    words = np.array([word for line in lines for word in line])
    line_starts = np.cumsum(line_lengths) - line_lengths
    tokens = np.insert(vocabulary.encode(words), line_starts - np.arange(len(lines)), BOS_ID)
    windows = -(-(line_lengths - 1) // length)
    first_window = np.repeat(np.cumsum(windows) - windows, windows)
    starts = np.repeat(line_starts, windows) + (np.arange(windows.sum()) - first_window) * length
    sizes = np.minimum(length + 1, np.repeat(line_starts + line_lengths, windows) - starts)
    offsets = np.arange(length + 1)
    positions = np.minimum(starts[:, None] + offsets, len(tokens) - 1)
    return np.where(offsets < sizes[:, None], tokens[positions], PAD_ID)


def _dataset(sequences: np.ndarray, vocabulary_size: int) -> TokenDataset:
    tokens = torch.from_numpy(sequences)
    return TokenDataset(tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous(), vocabulary_size)


def write_text_fixture(root: str | PathLike[str], num_clients: int = 6, posts_per_client: int = 12,
                       vocabulary_size: int = 24, seed: int = 0) -> str:
    """Write a synthetic text data set in our layout under ``root``; return ``root``.

    The vocabulary is ``w0`` ... ``w{vocabulary_size - 1}``. Posts of 3 to 2 * SEQUENCE_LENGTH
    words (so some are padded and some span two sequences) follow one successor map shared by all
    clients: after word i comes word ``(3 i + 1) mod vocabulary_size`` nine times in ten, else a
    word out of the vocabulary (read as <unk>); each client starts its posts from its own few
    words. Each client has one file in train/ and one, a quarter as long, in test/.
    """
    if num_clients < 1 or posts_per_client < 1 or vocabulary_size < 2:
        raise ValueError(f"need a client, a post and two words, got {num_clients}, {posts_per_client}, "
                         f"{vocabulary_size}")
    base, rng = Path(root), np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(vocabulary_size)])
    successor = (3 * np.arange(vocabulary_size) + 1) % vocabulary_size
    (base / VOCABULARY_FILE).parent.mkdir(parents=True, exist_ok=True)
    (base / VOCABULARY_FILE).write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    rows: dict[str, list[tuple[str, str, str, int]]] = {split: [] for split in SPLITS}
    for client in range(num_clients):
        client_id, starts = f"user{client:03d}", rng.choice(vocabulary_size, size=3)
        for split, posts in (("train", posts_per_client), ("test", max(1, posts_per_client // 4))):
            lines = []
            for _ in range(posts):
                word = [rng.choice(starts)]
                for _ in range(rng.integers(2, 2 * SEQUENCE_LENGTH)):
                    word.append(successor[word[-1]])
                text = vocabulary[word]
                lines.append(" ".join(np.where(rng.random(len(text)) < 0.1, "oov", text)))
            (base / split).mkdir(exist_ok=True)
            (base / split / f"{client_id}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            rows[split].append((client_id, f"{client_id}.txt", "-1", -1))
    write_mappings(base, rows)
    return str(base)


FEDSCALE_MAPPINGS = MAPPING_DIR + ".tokenized"  # where FedScale's own block-numbering mappings are moved


def prepare_fedscale_download(data_dir: str | PathLike[str], vocabulary_size: int = 30_000) -> str:
    """Turn FedScale's download of a text set (``train/`` and ``test/``, one file per client named
    by its id) into the layout this loader reads: ``vocab.txt``, the ``vocabulary_size`` most
    frequent whitespace tokens of ``train/`` (ties in token order), and one mapping row per
    non-empty file. FedScale's own ``client_data_mapping/`` (which numbers ALBERT-tokenizer blocks)
    is kept, moved to ``client_data_mapping.tokenized/``. Returns what was done, in one line."""
    root = Path(data_dir)
    splits = {split: sorted(p for p in (root / split).glob("*") if p.is_file() and p.stat().st_size)
              for split in SPLITS}
    if not splits["train"]:
        raise DataError.at(root / "train", "FedScale's text download: a folder of one text file per client")
    counts: Counter[str] = Counter()
    for path in splits["train"]:
        counts.update(_read_text(path, "UTF-8 text").split())
    counts.pop("", None)
    for token in RESERVED_TOKENS:
        counts.pop(token, None)
    tokens = sorted(counts, key=lambda token: (-counts[token], token))[:vocabulary_size]
    (root / VOCABULARY_FILE).write_text("\n".join(tokens) + "\n", encoding="utf-8")
    moved = ""
    if (root / MAPPING_DIR).exists():
        (root / MAPPING_DIR).rename(root / FEDSCALE_MAPPINGS)
        moved = f"; FedScale's {MAPPING_DIR}/ moved to {FEDSCALE_MAPPINGS}/"
    write_mappings(root, {split: [(path.stem, path.name, "-1", -1) for path in paths] for split, paths in splits.items()})
    return (f"{root}: {VOCABULARY_FILE} of {len(tokens)} tokens, {MAPPING_DIR}/ of {len(splits['train'])} train and "
            f"{len(splits['test'])} test files{moved}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prepare FedScale's download of reddit, blog or stackoverflow for "
                                                 "this loader (vocab.txt and client_data_mapping/).")
    parser.add_argument("data_dir")
    parser.add_argument("--vocabulary-size", type=int, default=30_000)
    args = parser.parse_args(argv)
    try:
        print(prepare_fedscale_download(args.data_dir, args.vocabulary_size))
    except (DataError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
