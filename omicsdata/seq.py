"""Central-dogma sequence utilities (after Life-Code): one nucleotide alphabet for DNA, RNA and protein.

Life-Code unifies omics by mapping everything onto DNA: RNA is
reverse-transcribed (U -> T) and a protein is back-translated into a coding
sequence with a codon-usage table; a codon tokenizer then reads the result
three letters at a time.

>>> from omicsdata import seq
>>> seq.reverse_transcribe("AUGGCU")
'ATGGCT'
>>> seq.translate(seq.back_translate("MKV*"))
'MKV*'
>>> tok = seq.CodonTokenizer()
>>> tok.decode(tok.encode("ATGGCTTA"))
'ATGGCTTA'

Codon usage comes from the Kazusa tables shipped by ``python-codon-tables``
(default ``h_sapiens_9606``); any ``{amino_acid: {codon: frequency}}``
mapping can be passed instead. The genetic code is the standard one (NCBI
table 1); ``*`` is a stop.
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Iterable, Mapping

import numpy as np

from .errors import OmicsDataError

__all__ = ["SeqError", "CODON_TABLE", "CODONS", "AMINO_ACIDS", "transcribe", "reverse_transcribe",
           "translate", "back_translate", "codon_usage", "reverse_complement", "CodonTokenizer"]


class SeqError(OmicsDataError, ValueError):
    """A sequence holds letters its alphabet does not allow, or a table is incomplete."""


_BASES = "TCAG"
# NCBI translation table 1, codons in TCAG order (the order the table is printed in).
_AA_TCAG = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
CODONS: tuple[str, ...] = tuple("".join(c) for c in itertools.product(_BASES, repeat=3))
CODON_TABLE: dict[str, str] = dict(zip(CODONS, _AA_TCAG))
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY*"
_SYNONYMS: dict[str, tuple[str, ...]] = {
    aa: tuple(c for c in CODONS if CODON_TABLE[c] == aa) for aa in AMINO_ACIDS}
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def _check(s: str, alphabet: str, what: str) -> str:
    s = s.upper()
    bad = set(s) - set(alphabet)
    if bad:
        pos = next(i for i, ch in enumerate(s) if ch in bad)
        raise SeqError(f"{what} sequence: letter {s[pos]!r} at position {pos} is not one of {alphabet}")
    return s


def transcribe(dna: str) -> str:
    """DNA -> RNA (T -> U)."""
    return _check(dna, "ACGTN", "DNA").replace("T", "U")


def reverse_transcribe(rna: str) -> str:
    """RNA -> DNA (U -> T), as Life-Code does to put RNA on the DNA alphabet."""
    return _check(rna, "ACGUN", "RNA").replace("U", "T")


def reverse_complement(dna: str) -> str:
    """The reverse complement of a DNA sequence."""
    return _check(dna, "ACGTN", "DNA").translate(_COMPLEMENT)[::-1]


def translate(dna: str, *, to_stop: bool = False) -> str:
    """DNA (or RNA) coding sequence -> protein, standard code; stops are ``*``.

    The length must be a multiple of 3. Codons with ``N`` translate to ``X``.
    ``to_stop=True`` ends at the first stop (excluded).
    """
    s = dna.upper().replace("U", "T")
    _check(s, "ACGTN", "coding")
    if len(s) % 3:
        raise SeqError(f"coding sequence: length {len(s)} is not a multiple of 3")
    out = []
    for i in range(0, len(s), 3):
        aa = CODON_TABLE.get(s[i:i + 3], "X")
        if to_stop and aa == "*":
            break
        out.append(aa)
    return "".join(out)


@lru_cache(maxsize=None)
def _kazusa(name: str) -> dict:
    import python_codon_tables as pct

    try:
        return pct.get_codons_table(name)
    except Exception as e:  # the package raises plain errors for unknown names
        raise SeqError(f"codon usage table '{name}' not found ({e}); known: "
                       f"{', '.join(pct.available_codon_tables_names)}") from None


def codon_usage(table: str | Mapping[str, Mapping[str, float]] = "h_sapiens_9606") -> dict[str, dict[str, float]]:
    """A codon-usage table ``{amino_acid: {codon: relative frequency}}`` (frequencies sum to 1 per amino acid).

    ``table`` is a Kazusa name from ``python-codon-tables`` or a mapping of
    the same shape (codons may be RNA). Every amino acid and ``*`` must have
    at least one codon that really encodes it.
    """
    raw = _kazusa(table) if isinstance(table, str) else table
    out: dict[str, dict[str, float]] = {}
    for aa in AMINO_ACIDS:
        entries = {str(c).upper().replace("U", "T"): float(f) for c, f in dict(raw.get(aa, {})).items()}
        for c in entries:
            if CODON_TABLE.get(c) != aa:
                raise SeqError(f"codon usage table: codon {c} listed for {aa!r} encodes {CODON_TABLE.get(c)!r}")
        total = sum(max(f, 0.0) for f in entries.values())
        if not entries or total <= 0:
            raise SeqError(f"codon usage table: no codon with positive frequency for amino acid {aa!r}")
        out[aa] = {c: max(f, 0.0) / total for c, f in entries.items()}
    return out


def back_translate(protein: str, *, mode: str = "most_frequent",
                   table: str | Mapping = "h_sapiens_9606", seed: int | None = None,
                   rng: np.random.Generator | None = None) -> str:
    """Protein -> DNA coding sequence with a codon-usage table (Life-Code's reverse translation).

    ``mode="most_frequent"`` takes each amino acid's most used codon (ties:
    first in TCAG order); ``mode="sample"`` draws each codon with its usage
    frequency from ``rng`` (or a generator seeded with ``seed``). ``*`` is a
    stop codon. ``translate(back_translate(p)) == p`` for every protein over
    ``ACDEFGHIKLMNPQRSTVWY*``.
    """
    p = _check(protein, AMINO_ACIDS, "protein")
    usage = codon_usage(table)
    if mode == "most_frequent":
        best = {aa: max(usage[aa], key=lambda c, aa=aa: (usage[aa][c], -CODONS.index(c))) for aa in usage}
        return "".join(best[aa] for aa in p)
    if mode == "sample":
        g = rng if rng is not None else np.random.default_rng(seed)
        cods = {aa: list(usage[aa]) for aa in usage}
        probs = {aa: np.array([usage[aa][c] for c in cods[aa]]) for aa in usage}
        return "".join(cods[aa][int(g.choice(len(cods[aa]), p=probs[aa]))] for aa in p)
    raise SeqError(f"back_translate: mode must be 'most_frequent' or 'sample', got {mode!r}")


class CodonTokenizer:
    """Codon tokenizer: 64 codon tokens plus special tokens, with a fallback for what is not a codon.

    Vocabulary: ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (ids 0-4), the 64 codons in
    TCAG order (ids 5-68), then one token per single nucleotide ``A C G T N``
    (ids 69-73). A sequence is read in frame from position 0; a full ACGT
    triplet becomes its codon token. A trailing incomplete codon (1-2
    letters) and any triplet holding a non-ACGT letter fall back to
    per-letter tokens, so ``decode(encode(s)) == s`` for every string of
    ``ACGTN`` (RNA input is reverse-transcribed first; other letters map to
    ``[UNK]``, which decodes to ``N``).
    """

    SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    LETTERS = ("A", "C", "G", "T", "N")

    def __init__(self):
        self.vocab: list[str] = list(self.SPECIAL) + list(CODONS) + [f"<{c}>" for c in self.LETTERS]
        self.token_to_id = {t: i for i, t in enumerate(self.vocab)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = range(5)
        self._codon_id = {c: self.token_to_id[c] for c in CODONS}
        self._letter_id = {c: self.token_to_id[f"<{c}>"] for c in self.LETTERS}

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def tokenize(self, seq: str) -> list[str]:
        """Token strings for ``seq`` (see the class docstring for the fallback)."""
        return [self.vocab[i] for i in self.encode(seq)]

    def _letter(self, ch: str) -> int:
        return self._letter_id.get(ch, self.unk_id)

    def encode(self, seq: str, *, add_special_tokens: bool = False) -> list[int]:
        """Token ids for ``seq``; ``add_special_tokens`` wraps them in ``[CLS] ... [SEP]``."""
        s = seq.upper().replace("U", "T")
        ids: list[int] = [self.cls_id] if add_special_tokens else []
        n_full = len(s) - len(s) % 3
        for i in range(0, n_full, 3):
            c = s[i:i + 3]
            cid = self._codon_id.get(c)
            if cid is not None:
                ids.append(cid)
            else:
                ids.extend(self._letter(ch) for ch in c)
        ids.extend(self._letter(ch) for ch in s[n_full:])
        if add_special_tokens:
            ids.append(self.sep_id)
        return ids

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = True) -> str:
        """The nucleotide string of ``ids`` (special tokens dropped; ``[UNK]`` -> ``N``)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.vocab):
                raise SeqError(f"token id {i} outside the vocabulary (size {len(self.vocab)})")
            t = self.vocab[i]
            if i == self.unk_id:
                out.append("N")
            elif t in self.SPECIAL:
                if not skip_special_tokens:
                    out.append(t)
            elif t.startswith("<"):
                out.append(t[1])
            else:
                out.append(t)
        return "".join(out)

    def batch_encode(self, seqs: Iterable[str], *, max_length: int | None = None,
                     add_special_tokens: bool = True):
        """Pad (and truncate to ``max_length``) a batch: returns ``(input_ids, attention_mask)`` int64 tensors."""
        import torch

        enc = [self.encode(s, add_special_tokens=add_special_tokens) for s in seqs]
        if max_length is not None:
            enc = [e[:max_length] for e in enc]
        L = max((len(e) for e in enc), default=0)
        ids = torch.full((len(enc), L), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(enc), L), dtype=torch.long)
        for r, e in enumerate(enc):
            ids[r, :len(e)] = torch.tensor(e, dtype=torch.long)
            mask[r, :len(e)] = 1
        return ids, mask
