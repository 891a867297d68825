"""The linear-chain CRF against brute-force enumeration of every tag sequence, gradcheck in
float64, constraints and lengths; the tagger with a CRF and character features."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnkit.data.batch import IGNORE_INDEX, TokenBatch
from rnnkit.data.spans import forbidden_transitions
from rnnkit.models import SequenceTagger, SequenceTaggerConfig, build_model, describe
from rnnkit.models.crf import FORBIDDEN, LinearChainCRF


def brute_force(crf: LinearChainCRF, emissions: torch.Tensor, length: int):
    """log Z and the best path of one row, by enumerating all num_tags ** length paths."""
    transitions, start, end = crf.scores()
    scores, paths = [], []
    for path in itertools.product(range(crf.num_tags), repeat=length):
        score = start[path[0]] + end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
        score = score + sum(transitions[a, b] for a, b in itertools.pairwise(path))
        scores.append(score)
        paths.append(path)
    stacked = torch.stack(scores)
    return stacked.logsumexp(0), list(paths[int(stacked.argmax())])


def random_crf(num_tags: int, forbidden=(), seed: int = 0) -> LinearChainCRF:
    torch.manual_seed(seed)
    crf = LinearChainCRF(num_tags, forbidden).double()
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.normal_()
    return crf


@pytest.mark.parametrize("forbidden", [(), ((0, 1), (3, 2), (2, 4), (1, 1))])
def test_log_partition_and_viterbi_equal_brute_force(forbidden):
    crf = random_crf(3, forbidden)
    torch.manual_seed(1)
    emissions = torch.randn(4, 5, 3, dtype=torch.float64)
    lengths = torch.tensor([5, 1, 3, 4])
    with torch.no_grad():
        log_z = crf.log_partition(emissions, lengths)
        decoded = crf.decode(emissions, lengths)
    for row, length in enumerate(lengths.tolist()):
        with torch.no_grad():
            expected_z, expected_path = brute_force(crf, emissions[row], length)
        assert float(log_z[row]) == pytest.approx(float(expected_z), abs=1e-10)
        assert decoded[row, :length].tolist() == expected_path
        assert (decoded[row, length:] == IGNORE_INDEX).all()


def test_forbidden_transitions_are_never_decoded():
    names = ["B-PER", "I-PER", "O"]
    crf = random_crf(3, forbidden_transitions(names, "iob2"), seed=3)
    with torch.no_grad():
        crf.transitions[2, 1] = 50.0  # O -> I-PER would win without the constraint
        crf.start[1] = 50.0
    emissions = torch.randn(8, 6, 3, dtype=torch.float64)
    emissions[..., 1] += 5  # every emission prefers I-PER
    decoded = crf.decode(emissions, torch.full((8,), 6))
    for row in decoded.tolist():
        assert row[0] != 1 and all(not (a == 2 and b == 1) for a, b in itertools.pairwise(row))
    assert crf.scores()[0][2, 1] == FORBIDDEN


def test_nll_is_minus_the_log_probability_and_probabilities_sum_to_one():
    crf = random_crf(2)
    emissions = torch.randn(1, 3, 2, dtype=torch.float64)
    lengths = torch.tensor([3])
    with torch.no_grad():
        total = sum(torch.exp(-crf.nll(emissions, torch.tensor([list(p)]), lengths))
                    for p in itertools.product(range(2), repeat=3))
    assert float(total) == pytest.approx(1.0, abs=1e-12)


def test_gradcheck_of_the_nll_in_float64():
    crf = random_crf(3, ((0, 1),))
    emissions = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    tags = torch.tensor([[0, 0, 2, 1], [2, 1, IGNORE_INDEX, IGNORE_INDEX]])
    lengths = torch.tensor([4, 2])

    def functional(emissions, transitions, start, end):
        original = crf.transitions, crf.start, crf.end
        del crf.transitions, crf.start, crf.end
        crf.transitions, crf.start, crf.end = transitions, start, end
        try:
            return crf.nll(emissions, tags, lengths)
        finally:
            del crf.transitions, crf.start, crf.end
            crf.transitions, crf.start, crf.end = original

    inputs = (emissions, *(p.detach().clone().requires_grad_(True)
                           for p in (crf.transitions, crf.start, crf.end)))
    assert torch.autograd.gradcheck(functional, inputs)


def test_bad_inputs_name_the_argument():
    crf = LinearChainCRF(3)
    with pytest.raises(ValueError, match=r"emissions: expected shape \(batch, seq, 3\)"):
        crf.decode(torch.zeros(2, 4, 2), torch.tensor([4, 4]))
    with pytest.raises(ValueError, match=r"lengths: expected values in \[1, 4\]"):
        crf.log_partition(torch.zeros(2, 4, 3), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="forbidden: expected"):
        LinearChainCRF(3, [[0, 3]])


def tagger(**options) -> SequenceTagger:
    torch.manual_seed(0)
    config = {"vocab_size": 12, "num_tags": 3, "embedding_size": 8, "hidden_size": 8,
              "num_chars": 10, **options}
    return build_model("sequence_tagger", config)


@pytest.mark.parametrize("char_features", ["none", "cnn", "lstm"])
@pytest.mark.parametrize("crf", [False, True])
def test_tagger_learns_a_toy_tagging_with_every_option(char_features, crf):
    model = tagger(char_features=char_features, crf=crf,
                   forbidden_transitions=[[2, 1], [3, 1]] if crf else [])
    # tag = B(0) for tokens starting a "word" of token 5, I(1) after it, O(2) otherwise;
    # the chars of token 5 spell it, so char features see it too
    tokens = torch.tensor([[5, 6, 3, 5, 6], [3, 5, 6, 6, 0], [4, 3, 0, 0, 0]])
    lengths = torch.tensor([5, 4, 2])
    targets = torch.tensor([[0, 1, 2, 0, 1], [2, 0, 1, 1, -100], [2, 2, -100, -100, -100]])
    chars = (tokens.unsqueeze(2) + torch.tensor([0, 1, 2])) % 10
    chars = chars.masked_fill(tokens.unsqueeze(2) == 0, 0)
    batch = TokenBatch(tokens, lengths, targets)
    batch.chars = chars  # type: ignore[attr-defined]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    first = float(model.loss(batch))
    for _ in range(60):
        optimizer.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
    assert float(loss) < first / 4
    predicted = model.predict(tokens, lengths, chars if char_features != "none" else None)
    assert torch.equal(predicted, targets)
    assert describe(model)["model_config"]["crf"] is crf


def test_tagger_needs_chars_with_char_features_and_can_freeze_embeddings():
    model = tagger(char_features="cnn", freeze_embeddings=True)
    with pytest.raises(ValueError, match=r"chars: expected shape \(1, 2, word_len\)"):
        model(torch.tensor([[1, 2]]))
    assert not model.encoder.embedding.weight.requires_grad
    with pytest.raises(ValueError, match="num_chars"):
        SequenceTaggerConfig(vocab_size=3, num_tags=2, char_features="lstm", num_chars=0)
