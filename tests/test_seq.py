"""omicsdata.seq: central-dogma utilities (Life-Code)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omicsdata import seq
from omicsdata.errors import OmicsDataError

PROTEIN = st.text(alphabet=seq.AMINO_ACIDS, max_size=200)


def test_genetic_code_is_standard():
    assert len(seq.CODON_TABLE) == 64
    assert seq.CODON_TABLE["ATG"] == "M" and seq.CODON_TABLE["TGG"] == "W"
    assert {c for c, a in seq.CODON_TABLE.items() if a == "*"} == {"TAA", "TAG", "TGA"}
    # 61 sense codons cover the 20 amino acids (Leu/Ser/Arg have 6 each)
    counts = {a: sum(1 for v in seq.CODON_TABLE.values() if v == a) for a in seq.AMINO_ACIDS}
    assert counts["L"] == counts["S"] == counts["R"] == 6 and counts["M"] == counts["W"] == 1


def test_reverse_transcription_and_transcription():
    assert seq.reverse_transcribe("AUGGCUUAA") == "ATGGCTTAA"
    assert seq.transcribe(seq.reverse_transcribe("acgu")) == "ACGU"
    with pytest.raises(seq.SeqError, match="position 2"):
        seq.reverse_transcribe("AUTG")
    assert seq.reverse_complement("ATGC") == "GCAT"


@settings(max_examples=150, deadline=None)
@given(PROTEIN)
def test_back_translate_round_trip_most_frequent(p):
    dna = seq.back_translate(p)
    assert len(dna) == 3 * len(p)
    assert seq.translate(dna) == p


@settings(max_examples=150, deadline=None)
@given(PROTEIN, st.integers(0, 2**31 - 1))
def test_back_translate_round_trip_sampled(p, s):
    assert seq.translate(seq.back_translate(p, mode="sample", seed=s)) == p


def test_most_frequent_uses_table_and_sampling_follows_usage():
    usage = seq.codon_usage("h_sapiens_9606")
    # human: Leu's most used codon is CTG, Ala's GCC (Kazusa)
    assert seq.back_translate("LA") == "CTGGCC"
    assert max(usage["L"], key=usage["L"].get) == "CTG"
    draws = seq.back_translate("L" * 20000, mode="sample", seed=0)
    codons = [draws[i:i + 3] for i in range(0, len(draws), 3)]
    freq = {c: codons.count(c) / len(codons) for c in usage["L"]}
    for c, f in usage["L"].items():
        assert abs(freq[c] - f) < 0.02, (c, freq[c], f)
    # a different organism gives a different most-frequent choice somewhere
    assert seq.back_translate("LRS", table="e_coli_316407") != seq.back_translate("LRS")


def test_custom_usage_table_validated():
    good = {aa: {c: 1.0 for c in seq.CODON_TABLE if seq.CODON_TABLE[c] == aa} for aa in seq.AMINO_ACIDS}
    assert seq.translate(seq.back_translate("MW*", table=good)) == "MW*"
    bad = dict(good, K={"AAA": 1.0, "GAA": 1.0})  # GAA encodes E
    with pytest.raises(seq.SeqError, match="GAA"):
        seq.back_translate("K", table=bad)
    with pytest.raises(OmicsDataError, match="letter 'B'"):
        seq.back_translate("MB")
    with pytest.raises(seq.SeqError, match="mode"):
        seq.back_translate("M", mode="best")


def test_translate_rejects_partial_codons():
    with pytest.raises(seq.SeqError, match="multiple of 3"):
        seq.translate("ATGA")
    assert seq.translate("ATGNNNTAAGGG", to_stop=True) == "MX"


def test_codon_tokenizer_vocab_and_fallback():
    tok = seq.CodonTokenizer()
    assert tok.vocab_size == 5 + 64 + 5
    assert len({t for t in tok.vocab if len(t) == 3 and t.isalpha()}) == 64
    assert tok.tokenize("ATGGCC") == ["ATG", "GCC"]
    # incomplete trailing codon -> per-letter tokens
    assert tok.tokenize("ATGGC") == ["ATG", "<G>", "<C>"]
    # a triplet with a non-ACGT letter -> per-letter tokens, RNA read as DNA
    assert tok.tokenize("AUGANG") == ["ATG", "<A>", "<N>", "<G>"]
    ids = tok.encode("ATGX", add_special_tokens=True)
    assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id and tok.unk_id in ids
    assert tok.decode(ids) == "ATGN"
    with pytest.raises(seq.SeqError):
        tok.decode([999])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ACGTN", max_size=100))
def test_codon_tokenizer_round_trip(s):
    tok = seq.CodonTokenizer()
    assert tok.decode(tok.encode(s, add_special_tokens=True)) == s


def test_batch_encode_pads():
    tok = seq.CodonTokenizer()
    ids, mask = tok.batch_encode(["ATGGCC", "ATG"])
    assert ids.shape == (2, 4) and mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert ids[1, 3].item() == tok.pad_id
    assert np.array_equal(ids[0].numpy(), tok.encode("ATGGCC", add_special_tokens=True))
